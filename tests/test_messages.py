"""Small wording a user reads in messages: nothing unknown printed as None, no '0.0 GiB
freed', an empty filtered history that says it is filtered."""

from __future__ import annotations

from sparktop.bench.tables import history_lines
from sparktop.catalog.fit import FitVerdict
from sparktop.snapshot import ServerInfo


def test_a_server_without_a_pid_is_named_without_none():
    assert ServerInfo(name="q", engine="vllm", pid=None, port=38411).who == "q (port 38411)"
    assert ServerInfo(name="q", engine="vllm", pid=7, port=8000).who == "q (pid 7, port 8000)"


def test_a_few_mib_freed_is_not_said_as_0_0_gib():
    gib = 2**30

    def summary(freed: int) -> str:
        return FitVerdict("fits", 10 * gib, 100 * gib, freed, 90 * gib, ()).summary()

    assert "freed by stopping" not in summary(22 * 2**20)
    assert "(incl. 8.0 GiB freed by stopping)" in summary(8 * gib)


def test_results_of_an_unknown_model_say_so():
    assert history_lines([], "nosuch") == [
        "no kept runs of model 'nosuch' (sparktop results lists them all)"
    ]
    assert history_lines([])[0].startswith("no kept runs yet")
