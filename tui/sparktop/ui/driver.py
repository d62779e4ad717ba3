"""Textual's Linux driver with an input thread that sleeps while nothing is typed.

Textual's input thread wakes ten times a second to check whether the app is leaving, which
on its own costs ~0.1 % of a core: more than the rest of an idle sparktop in a tmux pane.
Here it waits for a key for as long as it likes, and a pipe wakes it when input is switched
off (quit, suspend). The short wait remains while the key parser holds half an escape
sequence, so a lone Esc still arrives at once.
"""

from __future__ import annotations

import contextlib
import os
import selectors
from codecs import getincrementaldecoder

from textual._loop import loop_last
from textual._xterm_parser import XTermParser
from textual.drivers.linux_driver import LinuxDriver

IDLE_WAIT_S = 5.0
PARSER_WAIT_S = 0.1  # Textual's own: how often a pending escape sequence is looked at


class QuietLinuxDriver(LinuxDriver):
    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._wake_read, self._wake_write = os.pipe()
        os.set_blocking(self._wake_read, False)
        os.set_blocking(self._wake_write, False)

    def disable_input(self) -> None:
        # wake the thread: it spins (microseconds) until Textual sets the exit event; never
        # after close(), when the pipe's numbers may belong to a file opened since
        if self._wake_write >= 0:
            with contextlib.suppress(OSError):
                os.write(self._wake_write, b"x")
        super().disable_input()

    def close(self) -> None:
        super().close()
        fds, self._wake_read, self._wake_write = (self._wake_read, self._wake_write), -1, -1
        for fd in fds:
            with contextlib.suppress(OSError):
                os.close(fd)

    def run_input_thread(self) -> None:
        """Textual's loop (textual 8.2, linux_driver.py), with the wait made adaptive."""
        with contextlib.suppress(OSError):  # a wake-up left from an earlier disable_input
            while os.read(self._wake_read, 64):
                pass
        selector = selectors.SelectSelector()
        selector.register(self.fileno, selectors.EVENT_READ)
        selector.register(self._wake_read, selectors.EVENT_READ)
        fileno = self.fileno
        parser = XTermParser(self._debug)
        decode = getincrementaldecoder("utf-8")().decode

        def process(events: list[tuple[selectors.SelectorKey, int]], final: bool = False) -> None:
            keyed = [(key, mask) for key, mask in events if key.fd == fileno]
            for last, (_key, mask) in loop_last(keyed):
                if mask & selectors.EVENT_READ:
                    data = decode(os.read(fileno, 1024 * 4), final=final and last)
                    if not data:
                        break
                    for event in parser.feed(data):
                        self.process_message(event)
            for event in parser.tick():
                self.process_message(event)

        try:
            while not self.exit_event.is_set():
                pending = parser._timeout_time is not None
                process(selector.select(PARSER_WAIT_S if pending else IDLE_WAIT_S))
            selector.unregister(self.fileno)
            process(selector.select(PARSER_WAIT_S), final=True)
        finally:
            selector.close()
