"""Other hosts (issue #7): config, a real OpenSSH server on loopback, `sparktop agent`,
`sparktop hosts`, serve/stop/test with --host, and the fleet view."""

from __future__ import annotations

import contextlib
import getpass
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import yaml
from conftest import (
    free_port,
    load_fake_nvml,
    machine_roots,
    make_app,
    run_cli,
    tiny_entry,
    write_user_catalog,
)

from sparktop.config import ConfigError, load_config
from sparktop.fleet.hosts import Host
from sparktop.fleet.remote import fetch, fetch_all
from sparktop.fleet.ssh import remote_command, ssh_argv
from sparktop.units import fmt_bytes

SSHD = "/usr/sbin/sshd"


def _wait_port(port: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.05)
    raise AssertionError(f"nothing listens on 127.0.0.1:{port} after {timeout} s")


# -- a real sshd on loopback ---------------------------------------------------------------


@pytest.fixture(scope="session")
def sshd(tmp_path_factory: pytest.TempPathFactory):
    """OpenSSH's sshd on 127.0.0.1:<free port>, key-only, with a generated client key."""
    if not os.path.exists(SSHD) or shutil.which("ssh") is None or not shutil.which("ssh-keygen"):
        pytest.skip("OpenSSH server/client not installed (apt-get install openssh-server)")
    privsep = Path("/run/sshd")  # sshd refuses to start without its privilege-separation dir
    if not privsep.is_dir():
        try:
            privsep.mkdir(mode=0o755, parents=True)
        except OSError as exc:
            pytest.skip(f"sshd needs {privsep}, which cannot be made here: {exc}")
    root = tmp_path_factory.mktemp("sshd")
    for key in ("host_key", "client_key"):
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(root / key)],
                       check=True, timeout=30)  # fmt: skip
    port = free_port()
    config = root / "sshd_config"
    config.write_text(
        f"Port {port}\nListenAddress 127.0.0.1\nHostKey {root / 'host_key'}\n"
        f"AuthorizedKeysFile {root / 'client_key.pub'}\nPidFile {root / 'sshd.pid'}\n"
        "StrictModes no\nUsePAM no\nPermitRootLogin prohibit-password\n"
        "PasswordAuthentication no\nKbdInteractiveAuthentication no\n"
        f"AllowUsers {getpass.getuser()}\n"
    )
    log = root / "sshd.log"
    proc = subprocess.Popen([SSHD, "-D", "-f", str(config), "-E", str(log)],
                            stdin=subprocess.DEVNULL, start_new_session=True)  # fmt: skip
    try:
        _wait_port(port)
        yield {"port": port, "key": root / "client_key", "known_hosts": root / "known_hosts",
               "log": log}  # fmt: skip
    finally:
        proc.terminate()  # by PID: the sshd we started, and only it
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


def ssh_host_entry(sshd: dict, dirs: dict[str, Path], name: str = "box2") -> dict:
    """A `hosts:` item reaching this machine through the test sshd; the remote sparktop uses
    the test's isolated config/state/data dirs (the remote login has a fresh environment)."""
    env = [f"SPARKTOP_{k.upper()}_DIR={v}" for k, v in dirs.items()]
    env.append(f"SPARKTOP_TEST_RUN={os.environ['SPARKTOP_TEST_RUN']}")  # see conftest
    return {
        "name": name,
        "ssh": f"{getpass.getuser()}@127.0.0.1",
        "port": sshd["port"],
        "identity": str(sshd["key"]),
        "options": {"UserKnownHostsFile": str(sshd["known_hosts"]),
                    "StrictHostKeyChecking": "accept-new"},
        "command": ["env", *env, sys.executable, "-m", "sparktop"],
        "timeout": 20,
    }  # fmt: skip


def write_config(dirs: dict[str, Path], hosts: list[dict]) -> Path:
    path = dirs["config"] / "config.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump({"hosts": hosts}, sort_keys=False))
    return path


# -- config ----------------------------------------------------------------------------------


def test_hosts_config_is_parsed(isolated_dirs):
    write_config(isolated_dirs, [
        {"name": "spark-02", "ssh": "me@spark-02", "port": 2222, "identity": "~/.ssh/k",
         "options": {"ProxyJump": "bastion"}, "command": ["/opt/st/bin/sparktop"]},
        {"name": "strix", "agent": "http://strix.lan:7377/", "token_env": "STRIX_TOKEN"},
        {"prometheus": "http://prom:9090/", "user_env": "PROM_USER",
         "password_env": "PROM_PASSWORD"},
    ])  # fmt: skip
    hosts = load_config().hosts
    assert [h.name for h in hosts] == ["spark-02", "strix", "prometheus"]
    assert hosts[2].transport == "prometheus" and hosts[2].address == "http://prom:9090"
    assert hosts[2].user_env == "PROM_USER" and not hosts[2].can_act
    assert hosts[0].transport == "ssh" and hosts[0].port == 2222
    assert hosts[0].options == (("ProxyJump", "bastion"),)
    assert hosts[1].transport == "agent" and hosts[1].agent == "http://strix.lan:7377"
    assert hosts[1].token_env == "STRIX_TOKEN" and not hosts[1].can_act


@pytest.mark.parametrize(
    ("item", "problem"),
    [
        ({"name": "a"}, "give ssh"),
        ({"name": "local", "ssh": "x"}, "reserved"),
        ({"name": "a", "ssh": "x", "colour": 1}, "unknown setting 'colour'"),
        ({"name": "a", "ssh": "-oProxyCommand=sh"}, "ssh must be"),
        ({"name": "a", "agent": "http://u:secret@h:1"}, "no credentials"),
        ({"name": "a", "agent": "http://h:1", "token_env": "s3cr3t-token!"}, "token_env"),
        ({"name": "a", "ssh": "x", "port": 0}, "port must be"),
        ({"prometheus": "prom:9090"}, "prometheus must be http://HOST:PORT"),
        ({"prometheus": "http://p:9090", "ssh": "x"}, "prometheus stands alone"),
        ({"prometheus": "http://p:9090", "user_env": "U"}, "both user_env and password_env"),
    ],
)
def test_bad_host_entries_say_file_and_line(isolated_dirs, item, problem):
    path = write_config(isolated_dirs, [{"name": "ok", "ssh": "ok"}, item])
    with pytest.raises(ConfigError) as info:
        load_config()
    assert str(info.value).startswith(f"{path}:")
    assert info.value.line is not None and info.value.line >= 4
    assert problem in str(info.value)
    result = run_cli("hosts")
    assert result.returncode == 2 and problem in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_ssh_argv_quotes_every_remote_argument():
    host = Host("h", "ssh", ssh="me@h", port=2222, identity="/k",
                options=(("ProxyJump", "b"),), command=("/opt/my dir/sparktop",))  # fmt: skip
    argv = ssh_argv(host, [*host.command, "serve", "x; touch /tmp/pwned"], connect_timeout=4.2)
    assert argv[:2] == ["ssh", "-T"]
    assert "BatchMode=yes" in argv and "ConnectTimeout=5" in argv
    assert argv[argv.index("-p") + 1] == "2222" and argv[argv.index("-i") + 1] == "/k"
    assert "ProxyJump=b" in argv
    assert argv[-3:-1] == ["me@h", "--"]
    assert argv[-1] == "'/opt/my dir/sparktop' serve 'x; touch /tmp/pwned'"
    assert remote_command(["a", "$(id)", "`id`"]) == "a '$(id)' '`id`'"


# -- SSH -----------------------------------------------------------------------------------


def test_remote_status_over_ssh_has_the_local_shape(sshd, isolated_dirs):
    host = load_host(isolated_dirs, ssh_host_entry(sshd, isolated_dirs))
    state = fetch(host)
    assert state.reachable, state.reason
    local = json.loads(run_cli("status", "--json").stdout)
    remote = state.status
    assert remote is not None
    assert set(remote) == set(local)
    assert set(remote["memory"]) == set(local["memory"])
    assert remote["hostname"] == local["hostname"] == socket.gethostname()
    assert remote["memory"]["total_bytes"] == local["memory"]["total_bytes"]
    assert state.to_json()["summary"]["memory_total_bytes"] == local["memory"]["total_bytes"]


def load_host(dirs: dict[str, Path], *items: dict) -> Host:
    write_config(dirs, list(items))
    return load_config().hosts[0]


def test_ssh_to_a_closed_port_is_unreachable_quickly():
    host = Host("dead", "ssh", ssh="root@127.0.0.1", port=free_port(), timeout=5)
    started = time.monotonic()
    state = fetch(host)
    assert time.monotonic() - started < 5
    assert not state.reachable
    assert "Connection refused" in (state.reason or "")
    assert "\n" not in (state.reason or "")


def test_ssh_to_a_silent_port_times_out_bounded():
    """A port that accepts but never speaks SSH: the fetch gives up on time, with a reason."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(5)
        port = listener.getsockname()[1]
        host = Host("silent", "ssh", ssh="root@127.0.0.1", port=port, timeout=1.5)
        started = time.monotonic()
        state = fetch(host)
        elapsed = time.monotonic() - started
    assert elapsed < 4
    assert not state.reachable
    assert "timed out" in (state.reason or "").lower()


@pytest.mark.slow
def test_remote_serve_test_and_stop_over_ssh(sshd, isolated_dirs, llama_server, tiny_gguf):
    port = free_port()
    write_user_catalog(isolated_dirs["config"], [tiny_entry("tiny-remote", tiny_gguf, port)])
    write_config(isolated_dirs, [ssh_host_entry(sshd, isolated_dirs)])

    served = run_cli("serve", "tiny-remote", "--host", "box2", "--yes", timeout=150)
    assert served.returncode == 0, served.stdout + served.stderr
    assert "tiny-remote is ready" in served.stdout
    # the server outlived the SSH session that started it, in its own process group
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=5) as response:
        assert response.status == 200

    hosts = run_cli("hosts", "--json", timeout=60)
    doc = json.loads(hosts.stdout)["hosts"][0]
    assert doc["reachable"], doc["reason"]
    assert "tiny-remote (ready)" in doc["summary"]["servers"]

    tested = run_cli("test", "tiny-remote", "--host", "box2", timeout=150)
    out = tested.stdout
    assert "PASS  /health" in out and "PASS  /v1/models" in out
    assert "PASS  /v1/chat/completions" in out
    # random weights babble: the remote coherence check catches it and its exit code comes back
    assert "FAIL  coherence" in out
    assert tested.returncode == 1

    stopped = run_cli("stop", "tiny-remote", "--host", "box2", timeout=150)
    assert stopped.returncode == 0, stopped.stdout + stopped.stderr
    assert "stopped tiny-remote" in stopped.stdout and "port free" in stopped.stdout
    with pytest.raises(OSError):
        urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2)


def test_remote_action_errors_are_one_line(sshd, isolated_dirs):
    write_config(isolated_dirs, [ssh_host_entry(sshd, isolated_dirs),
                                 {"name": "dead", "ssh": "root@127.0.0.1",
                                  "port": free_port()}])  # fmt: skip
    unknown = run_cli("serve", "x", "--host", "nowhere")
    assert unknown.returncode == 2 and "no host named 'nowhere'" in unknown.stderr
    dead = run_cli("stop", "x", "--host", "dead")
    assert dead.returncode == 1
    assert dead.stderr.strip().splitlines()[-1].startswith("sparktop: error: dead: ssh: connect")
    missing = run_cli("stop", "no-such-server", "--host", "box2", timeout=60)
    assert missing.returncode == 2  # an unknown name, as here
    assert "no server named 'no-such-server'" in missing.stderr


def test_hosts_cli_with_one_good_and_one_bad_host(sshd, isolated_dirs):
    dead_port = free_port()
    write_config(isolated_dirs, [
        ssh_host_entry(sshd, isolated_dirs),
        {"name": "dead", "agent": f"http://127.0.0.1:{dead_port}", "timeout": 3},
    ])  # fmt: skip
    started = time.monotonic()
    result = run_cli("hosts", "--json", timeout=60)
    assert result.returncode == 1  # one host is unreachable
    doc = {h["name"]: h for h in json.loads(result.stdout)["hosts"]}
    assert doc["box2"]["reachable"] and doc["box2"]["transport"] == "ssh"
    assert doc["box2"]["summary"]["hostname"] == socket.gethostname()
    assert doc["box2"]["status"]["schema"] == 1
    assert not doc["dead"]["reachable"]
    assert "Connection refused" in doc["dead"]["reason"]
    wide = run_cli("hosts", env={**os.environ, "COLUMNS": "300"}, timeout=60)
    lines = wide.stdout.splitlines()  # a line per host when it fits
    assert lines[0].startswith("box2") and " ok " in lines[0] and "mem " in lines[0]
    assert lines[1].startswith("dead") and "UNREACHABLE: cannot reach" in lines[1]
    narrow = run_cli("hosts", env={**os.environ, "COLUMNS": "80"}, timeout=60)
    lines = narrow.stdout.splitlines()  # at 80 columns: the rest below, indented, not cut
    assert all(len(line) <= 80 for line in lines), lines
    assert lines[0].startswith("box2") and " ok " in lines[0]
    assert lines[1].startswith("    mem ")
    dead = next(i for i, line in enumerate(lines) if line.startswith("dead"))
    assert lines[dead + 1].startswith("    UNREACHABLE: cannot reach")
    assert time.monotonic() - started < 40


# -- sparktop agent ------------------------------------------------------------------------

TOKEN = "t0ken-" + "9f2c4e7a1b"


def _get(url: str, token: str | None = None) -> tuple[int, dict, dict]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=15) as r:
            return r.status, dict(r.headers), json.loads(r.read())
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), json.loads(exc.read() or b"{}")


@pytest.fixture
def agent(tmp_path, no_orphans):
    """A real `sparktop agent` on loopback with a token from SPARKTOP_TEST_TOKEN."""
    port = free_port()
    log = tmp_path / "agent.err"
    env = dict(os.environ, SPARKTOP_TEST_TOKEN=TOKEN)
    with log.open("w") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "sparktop", "agent", "--port", str(port),
             "--token-env", "SPARKTOP_TEST_TOKEN"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err, env=env,
            start_new_session=True,
        )  # fmt: skip
    no_orphans.append(proc)
    _wait_port(port, 30)
    yield {"url": f"http://127.0.0.1:{port}", "proc": proc, "log": log}
    if proc.poll() is None:
        os.kill(proc.pid, signal.SIGTERM)
        proc.wait(timeout=10)


def test_agent_wants_the_token_and_never_logs_it(agent, monkeypatch):
    url = agent["url"]
    code, headers, body = _get(url + "/status")
    assert code == 401 and headers.get("WWW-Authenticate", "").startswith("Bearer")
    assert "memory" not in body
    assert _get(url + "/status", "wrong-" + TOKEN)[0] == 401
    code, _, doc = _get(url + "/status", TOKEN)
    assert code == 200 and doc["schema"] == 1 and doc["memory"]["total_bytes"] > 0
    assert _get(url + "/health", TOKEN) == (200, _get(url + "/health", TOKEN)[1], {"status": "ok"})
    assert _get(url + "/health")[0] == 401

    # the fleet client: with the token it reads the host, without it says why
    monkeypatch.setenv("FLEET_TOKEN", TOKEN)
    good = fetch(Host("a", "agent", agent=url, token_env="FLEET_TOKEN"))
    assert good.reachable and good.status and good.status["hostname"] == socket.gethostname()
    monkeypatch.setenv("FLEET_TOKEN", "nope")
    refused = fetch(Host("a", "agent", agent=url, token_env="FLEET_TOKEN"))
    assert not refused.reachable and "401" in (refused.reason or "")
    unset = fetch(Host("a", "agent", agent=url, token_env="FLEET_TOKEN_UNSET"))
    assert "FLEET_TOKEN_UNSET" in (unset.reason or "")

    os.kill(agent["proc"].pid, signal.SIGTERM)
    assert agent["proc"].wait(timeout=10) == 0
    log = agent["log"].read_text()
    assert "GET /status 401" in log and "GET /status 200" in log
    assert TOKEN not in log and "Bearer" not in log


def test_agent_refuses_a_non_loopback_bind_without_a_token(monkeypatch):
    monkeypatch.delenv("SPARKTOP_AGENT_TOKEN", raising=False)
    result = run_cli("agent", "--bind", "0.0.0.0", "--port", str(free_port()), timeout=30)
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1
    assert "refusing to listen on 0.0.0.0 without a token" in result.stderr
    empty = run_cli("agent", "--token-env", "SPARKTOP_EMPTY_TOKEN", "--port", str(free_port()),
                    env=dict(os.environ, SPARKTOP_EMPTY_TOKEN=""), timeout=30)  # fmt: skip
    assert empty.returncode == 2 and "SPARKTOP_EMPTY_TOKEN" in empty.stderr


def test_agent_on_loopback_without_a_token_answers():
    from sparktop.fleet.agent import make_server

    server = make_server(
        "127.0.0.1", 0, None, lambda: {"schema": 1, "memory": None}, lambda _: None
    )
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        port = server.server_address[1]
        assert _get(f"http://127.0.0.1:{port}/status") == (
            200, _get(f"http://127.0.0.1:{port}/status")[1], {"schema": 1, "memory": None}
        )  # fmt: skip
    finally:
        server.shutdown()
        server.server_close()


def test_one_dead_host_does_not_delay_the_others():
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(5)
        slow = Host("slow", "agent", agent=f"http://127.0.0.1:{silent.getsockname()[1]}",
                    timeout=2)  # fmt: skip
        dead = Host("dead", "agent", agent=f"http://127.0.0.1:{free_port()}", timeout=2)
        started = time.monotonic()
        states = fetch_all([slow, dead, slow])
        elapsed = time.monotonic() - started
    assert elapsed < 3.5  # concurrent: about one timeout, not the sum
    assert [s.reachable for s in states] == [False, False, False]
    assert "timed out after 2 s" in (states[0].reason or "")
    assert "Connection refused" in (states[1].reason or "")


# -- the fleet view --------------------------------------------------------------------------


@pytest.fixture
def spark_agent():
    """An in-process agent (with a token) answering like the DGX Spark fixture machine."""
    from sparktop.fleet.agent import make_server
    from sparktop.probes.system import SystemProbe

    probe = SystemProbe(machine_roots("spark"), nvml=load_fake_nvml("spark"))
    doc = probe.collect().to_json()
    probe.close()
    server = make_server("127.0.0.1", 0, TOKEN, lambda: doc, lambda _: None)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", doc
    server.shutdown()
    server.server_close()


@contextlib.asynccontextmanager
async def fleet_screen(hosts: list[Host], size: tuple[int, int] = (140, 40)):
    """The app on the fixture machine with the fleet view of `hosts` open (1 s polls):
    (app, pilot, screen, cell(row, column) → text)."""
    from textual.widgets import DataTable

    from sparktop.ui.screens.fleet import FleetScreen, app_local_status

    app = make_app()
    async with app.run_test(size=size) as pilot:
        await app.snapshot_ready.wait()
        screen = FleetScreen(hosts, lambda: app_local_status(app), interval=1.0)
        await app.push_screen(screen)
        table = screen.query_one(DataTable)
        yield app, pilot, screen, lambda row, column: str(table.get_cell(row, column))


async def test_fleet_state_stays_in_sight_at_80_columns():
    """STATE is the column after HOST: at 80×24 a dead host's row says so (a long reason ends
    in …), and its detail below the table gives the reason whole."""
    from textual.widgets import DataTable, Static

    hosts = [Host("gone", "agent", agent=f"http://127.0.0.1:{free_port()}", timeout=2)]
    async with fleet_screen(hosts, size=(80, 24)) as (_app, pilot, screen, cell):
        for _ in range(300):
            await pilot.pause(0.1)
            if all(cell(row, "STATE") != "polling…" for row in ("local", "gone")):
                break
        await pilot.pause()
        table = screen.query_one(DataTable)
        lines = [table.render_line(y).text for y in range(table.size.height)]
        row = next(line for line in lines if line.lstrip().startswith("gone"))
        assert "unreachable: cannot" in row and "…" in row, lines
        assert "ok (" in next(line for line in lines if line.lstrip().startswith("local"))
        table.move_cursor(row=1)
        await pilot.press("enter")
        await pilot.pause()
        detail = str(screen.query_one("#fleet-detail", Static).render())
        assert "Connection refused" in detail

        await pilot.resize_terminal(200, 40)  # wide: the reason fits whole in the row
        await pilot.pause(0.3)
        lines = [table.render_line(y).text for y in range(table.size.height)]
        row = next(line for line in lines if line.lstrip().startswith("gone"))
        assert "Connection refused" in row, lines


async def test_fleet_view_shows_reachable_and_unreachable_hosts(spark_agent, monkeypatch):
    from textual.widgets import DataTable, Static

    from sparktop.ui.screens.fleet import FleetScreen

    url, doc = spark_agent
    monkeypatch.setenv("SPARK_TOKEN", TOKEN)
    hosts = [
        Host("spark-02", "agent", agent=url, token_env="SPARK_TOKEN", timeout=5),
        Host("gone", "agent", agent=f"http://127.0.0.1:{free_port()}", timeout=2),
    ]
    async with fleet_screen(hosts) as (app, pilot, screen, cell):
        table = screen.query_one(DataTable)
        for _ in range(100):
            await pilot.pause(0.1)
            if all(cell(r, "STATE") != "polling…" for r in ("local", "spark-02", "gone")):
                break
        assert cell("gone", "STATE").startswith("unreachable: cannot reach")
        assert "Connection refused" in cell("gone", "STATE")
        assert cell("spark-02", "STATE") == f"ok ({doc['hostname']})"
        assert "NVIDIA GB10" in cell("spark-02", "GPUS")
        total = fmt_bytes(doc["memory"]["total_bytes"])
        assert cell("spark-02", "MEMORY").endswith(f"/{total}")
        assert cell("local", "STATE").startswith("ok (")

        # enter on a row switches the whole detail box to that host
        table.move_cursor(row=1)
        await pilot.press("enter")
        await pilot.pause()
        detail = str(screen.query_one("#fleet-detail", Static).render())
        assert doc["hostname"] in detail and "NVIDIA GB10" in detail and "Servers (0)" in detail
        table.move_cursor(row=2)
        await pilot.press("enter")
        await pilot.pause()
        detail = str(screen.query_one("#fleet-detail", Static).render())
        assert detail.startswith("unreachable: cannot reach") and "Connection refused" in detail
        # no SSH destination: the action keys say so instead of trying
        await pilot.press("x")
        await pilot.pause()
        await pilot.press("escape")
        await pilot.pause()
        assert not isinstance(app.screen, FleetScreen)
        assert screen.poller.stopped.is_set()


@pytest.mark.slow
async def test_fleet_view_serves_and_stops_on_a_host_over_ssh(
    sshd, isolated_dirs, llama_server, tiny_gguf
):
    from textual.widgets import DataTable, OptionList

    from sparktop.ui.screens.dialogs import ConfirmScreen, TextScreen
    from sparktop.ui.screens.fleet import FleetScreen, PickScreen

    port = free_port()
    write_user_catalog(isolated_dirs["config"], [tiny_entry("tiny-fleet", tiny_gguf, port)])
    host = load_host(isolated_dirs, ssh_host_entry(sshd, isolated_dirs))
    app = make_app()
    async with app.run_test(size=(140, 40)) as pilot:
        screen = FleetScreen([host], lambda: None, interval=1.0,
                             catalog_names=lambda: ["tiny-fleet"])  # fmt: skip
        await app.push_screen(screen)
        screen.query_one(DataTable).move_cursor(row=1)

        async def until(predicate, timeout: float = 90.0):
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                await pilot.pause(0.1)
                if predicate():
                    return
            raise AssertionError(f"condition not met in time (screen {app.screen!r})")

        await pilot.press("s")
        await until(lambda: isinstance(app.screen, PickScreen))
        await pilot.press("enter")
        await until(lambda: isinstance(app.screen, ConfirmScreen))
        await pilot.press("y")
        await until(lambda: isinstance(app.screen, TextScreen))
        assert "serve tiny-fleet on box2: ok" in app.screen.text
        await pilot.press("escape")
        await until(
            lambda: "tiny-fleet (ready)" in str(screen.query_one(DataTable).get_row("box2"))
        )

        await pilot.press("x")  # a list of that host's servers (others may run there too)
        await until(lambda: isinstance(app.screen, PickScreen | ConfirmScreen))
        if isinstance(app.screen, PickScreen):
            app.screen.query_one(OptionList).highlighted = app.screen.choices.index("tiny-fleet")
            await pilot.press("enter")
            await until(lambda: isinstance(app.screen, ConfirmScreen))
        assert "Stop tiny-fleet on box2?" in app.screen.question
        await pilot.press("y")
        await until(lambda: isinstance(app.screen, TextScreen))
        assert "stop tiny-fleet on box2: ok" in app.screen.text
        assert "port free" in app.screen.text
        await pilot.press("escape")


@contextlib.contextmanager
def prometheus_api(answers: dict[str, list[tuple[dict, str]]], down: threading.Event | None = None):
    """A loopback stand-in for Prometheus's instant-query API: a query containing a key of
    `answers` gets those (labels, value) samples; 503 while `down` is set. Yields its URL."""
    import http.server

    class FakePrometheus(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if down is not None and down.is_set():
                self.send_error(503, "Service Unavailable")
                return
            query = urllib.request.unquote(self.path)
            key = next((k for k in answers if k in query), None)
            now = time.time()
            result = [{"metric": m, "value": [now, v]} for m, v in answers.get(key, [])]
            body = json.dumps(
                {"status": "success", "data": {"resultType": "vector", "result": result}}
            ).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), FakePrometheus)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def instance_answers(instance: str, hostname: str) -> dict[str, list[tuple[dict, str]]]:
    """What Prometheus answers for one live instance exporting sparktop's metrics."""
    labels = {"instance": instance, "job": "sparktop"}
    now = str(time.time())
    return {
        "last_over_time": [(labels, now)],
        "memory_": [({**labels, "__name__": "sparktop_build_info", "hostname": hostname,
                      "version": "0.1.0"}, "1"),
                    ({**labels, "__name__": "sparktop_snapshot_timestamp_seconds"}, now),
                    ({**labels, "__name__": "sparktop_memory_total_bytes"}, str(1 << 37))],
    }  # fmt: skip


def test_prometheus_answers_with_nan_and_inf_read_as_no_figure():
    """Prometheus can hold NaN and ±Inf samples (a broken exporter, a relabelled series):
    they read as absent figures, the instance is still listed, nothing raises."""
    from sparktop.fleet.remote import fetch_prometheus

    instance = {"instance": "spark-09:7377", "job": "sparktop"}
    gpu = {"gpu": "0", "name": "NVIDIA GB10", "vendor": "nvidia"}
    server = {"served_name": "q", "engine": "vllm", "port": "30000", "catalog_name": "",
              "server_container": ""}  # fmt: skip
    answers = instance_answers("spark-09:7377", "spark-09")
    answers["memory_"][2] = ({**instance, "__name__": "sparktop_memory_total_bytes"}, "NaN")
    answers |= {
        "gpu_": [({**instance, **gpu, "__name__": "sparktop_gpu_memory_used_bytes"}, "+Inf"),
                 ({**instance, **gpu, "__name__": "sparktop_gpu_utilization_ratio"}, "0.5")],
        "server_": [({**instance, **server, "__name__": "sparktop_server_requests_running"},
                     "-Inf"),
                    ({**instance, **server, "__name__": "sparktop_server_up"}, "1")],
    }  # fmt: skip
    with prometheus_api(answers) as url:
        (state,) = fetch_prometheus(Host("lab", "prometheus", prometheus=url, timeout=5))
        assert state.reachable and state.name == "spark-09:7377", state
        doc = state.to_json()
        assert doc["status"]["memory"] is None and doc["summary"]["hostname"] == "spark-09"
        (gpu_doc,) = doc["status"]["gpus"]
        assert gpu_doc["memory_used_bytes"] is None and gpu_doc["utilization_percent"] == 50.0
        (server_doc,) = doc["status"]["servers"]
        assert server_doc["running"] is None and server_doc["name"] == "q"


async def test_two_prometheus_entries_listing_one_instance_keep_their_row_names():
    """Two Prometheus entries that both scrape spark-05: one row is "spark-05:7377", the
    other "spark-05:7377 (<entry>)", and neither name moves when one Prometheus goes down
    (its row becomes the entry's, saying why) and comes back."""
    down = threading.Event()
    answers = instance_answers("spark-05:7377", "spark-05")
    with prometheus_api(answers, down) as url_a, prometheus_api(answers) as url_b:
        hosts = [Host("prom-a", "prometheus", prometheus=url_a, timeout=2),
                 Host("prom-b", "prometheus", prometheus=url_b, timeout=2)]  # fmt: skip
        async with fleet_screen(hosts) as (_app, pilot, screen, cell):
            from textual.widgets import DataTable

            table = screen.query_one(DataTable)

            def rows() -> set[str]:
                return {str(k.value) for k in table.rows}

            async def until(predicate) -> None:
                for _ in range(100):
                    await pilot.pause(0.1)
                    if predicate():
                        return
                raise AssertionError(rows())

            both = {"spark-05:7377", "spark-05:7377 (prom-a)", "spark-05:7377 (prom-b)"}
            await until(lambda: len(rows() & both) == 2)
            named = dict(screen.row_names)
            assert sorted(named.values()) == sorted(rows() & both)
            for name in rows() & both:
                assert cell(name, "STATE") == "ok (spark-05)"

            down.set()  # prom-a answers 503
            screen.action_refresh()
            await until(lambda: "prom-a" in rows())
            assert cell("prom-a", "STATE").startswith("unreachable: ")
            assert rows() == {"local", "prom-a", named[("prom-b", "spark-05:7377")]}

            down.clear()
            screen.show_host(named[("prom-a", "spark-05:7377")])  # a row gone: this box shown
            assert screen.shown == "local"
            screen.action_refresh()
            await until(lambda: "prom-a" not in rows())
            assert (
                screen.row_names[("prom-b", "spark-05:7377")] == named[("prom-b", "spark-05:7377")]
            )
            assert rows() == {"local", *screen.row_names.values()}
