"""A real Prometheus (issue 17) scrapes two `sparktop agent`s on loopback (one with a token),
each seeing a real llama-server; its API has the series with the expected labels and values,
and the fleet view / `sparktop hosts --json` read the whole fleet back from it."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
import yaml
from conftest import free_port, run_cli, start_outside, wait_for
from test_fleet import fleet_screen
from test_metrics import DOCS, families, meminfo_total, start_agent

from sparktop.fleet.hosts import Host

PROMETHEUS = shutil.which("prometheus")
PROMTOOL = shutil.which("promtool")
pytestmark = pytest.mark.skipif(
    PROMETHEUS is None or PROMTOOL is None,
    reason="prometheus/promtool not installed (apt-get install prometheus; .ci/run does)",
)
TOKEN = "prom-" + "c3a91e07"
ALIAS = "tiny-prom"


def ask(base: str, promql: str) -> list[dict]:
    """An instant query's result list."""
    url = f"{base}/api/v1/query?query={urllib.parse.quote(promql, safe='')}"
    with urllib.request.urlopen(url, timeout=10) as reply:
        doc = json.loads(reply.read())
    assert doc["status"] == "success", doc
    return doc["data"]["result"]


def by_instance(result: list[dict]) -> dict[str, dict]:
    return {item["metric"]["instance"]: item for item in result}


def start_prometheus(
    tmp_path: Path,
    started: list,
    targets: dict[str, str | None],
    web: dict | None = None,
    port: int | None = None,
) -> str:
    """Prometheus on loopback with its own config and storage, scraping each target (with
    its bearer token when given) every second; `web`: its --web.config.file (basic auth);
    `port`: the one to listen on (to start it again where it was). It is `started[-1]`."""
    jobs = []
    for index, (target, token) in enumerate(targets.items()):
        job = {"job_name": f"sparktop-{index}", "static_configs": [{"targets": [target]}]}
        if token:
            job["authorization"] = {"type": "Bearer", "credentials": token}
        jobs.append(job)
    config = tmp_path / "prometheus.yml"
    config.write_text(yaml.safe_dump({
        "global": {"scrape_interval": "1s", "scrape_timeout": "1s"}, "scrape_configs": jobs,
    }))  # fmt: skip
    check = subprocess.run([PROMTOOL, "check", "config", str(config)], capture_output=True,
                           text=True, timeout=30)  # fmt: skip
    assert check.returncode == 0, check.stdout + check.stderr
    port = port or free_port()
    argv = [PROMETHEUS, f"--config.file={config}", f"--storage.tsdb.path={tmp_path / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{port}", "--log.level=warn"]  # fmt: skip
    if web is not None:
        (tmp_path / "web.yml").write_text(yaml.safe_dump(web))
        argv.append(f"--web.config.file={tmp_path / 'web.yml'}")
    start_outside(argv, started)
    base = f"http://127.0.0.1:{port}"

    def ready() -> bool:
        try:
            with urllib.request.urlopen(base + "/-/ready", timeout=2) as reply:
                return reply.status == 200
        except urllib.error.HTTPError as exc:
            return exc.code == 401  # up, and asking for its basic auth
        except OSError:
            return False

    wait_for(ready, timeout=60, interval=0.3)
    return base


def complete(port: int) -> None:
    body = json.dumps({"prompt": "Hello", "n_predict": 8}).encode()
    request = urllib.request.Request(f"http://127.0.0.1:{port}/completion", data=body,
                                     headers={"Content-Type": "application/json"})  # fmt: skip
    with urllib.request.urlopen(request, timeout=60) as reply:
        assert reply.status == 200


@pytest.mark.slow
async def test_prometheus_scrapes_agents_and_the_fleet_reads_them_back(
    tmp_path, isolated_dirs, no_orphans, llama_server, tiny_gguf
):
    server_port = free_port()
    start_outside([llama_server, "-m", str(tiny_gguf), "--alias", ALIAS, "--port",
                   str(server_port), "--metrics", "-c", "256"], no_orphans)  # fmt: skip
    open_agent, open_port = start_agent(tmp_path / "open.err", no_orphans)
    token_agent, token_port = start_agent(tmp_path / "token.err", no_orphans, TOKEN)
    open_at, token_at = f"127.0.0.1:{open_port}", f"127.0.0.1:{token_port}"
    base = start_prometheus(tmp_path, no_orphans, {open_at: None, token_at: TOKEN})

    # both agents scraped (the one with a token too), their server seen ready
    def scraped() -> dict | None:
        up = by_instance(ask(base, f'sparktop_server_up{{served_name="{ALIAS}"}} == 1'))
        return up if set(up) == {open_at, token_at} else None

    up = wait_for(scraped, timeout=90, interval=0.5)
    labels = up[open_at]["metric"]
    assert labels["engine"] == "llama.cpp" and labels["port"] == str(server_port)
    assert "pid" not in labels
    totals = by_instance(ask(base, "sparktop_memory_total_bytes"))
    assert {float(t["value"][1]) for t in totals.values()} == {float(meminfo_total())}
    build = by_instance(ask(base, "sparktop_build_info"))
    assert build[token_at]["metric"]["hostname"] == os.uname().nodename

    # the generation counter grows after a completion
    counter = f'sparktop_server_generation_tokens_total{{instance="{open_at}"}}'
    wait_for(lambda: ask(base, counter), timeout=30, interval=0.5)
    before = float(ask(base, counter)[0]["value"][1])
    complete(server_port)
    wait_for(lambda: float(ask(base, counter)[0]["value"][1]) > before, timeout=30, interval=0.5)

    # every query of the shipped Grafana dashboard runs, and the memory split has data
    dashboard = json.loads((DOCS / "sparktop.json").read_text())
    for panel in dashboard["panels"]:
        for target in panel.get("targets", []):
            expr = target["expr"].replace("$instance", ".*").replace("$__rate_interval", "1m")
            result = ask(base, expr)
            if re.search(r"memory_(used|cached|free)_bytes|generation_tokens_total", expr):
                assert result, (panel["title"], expr)  # (no unified GPU here: no GPU bytes)

    # promtool agrees with the exposition the agent serves
    with urllib.request.urlopen(f"http://{open_at}/metrics", timeout=30) as reply:
        exposition = reply.read().decode()
    assert "sparktop_server_generation_tokens_total" in families(exposition)
    check = subprocess.run([PROMTOOL, "check", "metrics"], input=exposition,
                           capture_output=True, text=True, timeout=30)  # fmt: skip
    assert check.returncode == 0 and not (check.stdout + check.stderr).strip(), check.stderr

    # `sparktop hosts --json` with that Prometheus lists both instances and their server
    (isolated_dirs["config"]).mkdir(parents=True, exist_ok=True)
    (isolated_dirs["config"] / "config.yaml").write_text(
        yaml.safe_dump({"hosts": [{"prometheus": base, "name": "lab"}]})
    )
    hosts = run_cli("hosts", "--json", timeout=60)
    assert hosts.returncode == 0, hosts.stdout + hosts.stderr
    rows = {h["name"]: h for h in json.loads(hosts.stdout)["hosts"]}
    assert set(rows) == {open_at, token_at}
    for row in rows.values():
        assert row["transport"] == "prometheus" and row["address"] == base
        assert row["reachable"] and row["summary"]["servers"] == [f"{ALIAS} (ready)"]
        assert row["summary"]["memory_total_bytes"] == meminfo_total()
        assert row["summary"]["gpus"] == [] and row["summary"]["downloads_total"] == 0
    text = run_cli("hosts", timeout=60).stdout
    assert f"prometheus {base}" in text and f"{ALIAS} (ready)" in text

    # the fleet view: one row per instance, the same columns as SSH / agent rows
    from textual.widgets import DataTable, Static

    host = Host("lab", "prometheus", prometheus=base, timeout=10)
    async with fleet_screen([host], size=(160, 40)) as (_app, pilot, screen, cell):
        table = screen.query_one(DataTable)
        for _ in range(100):
            await pilot.pause(0.1)
            if {open_at, token_at} <= {str(k.value) for k in table.rows}:
                break
        for instance in (open_at, token_at):
            assert cell(instance, "STATE").startswith("ok (")
            assert f"{ALIAS} (ready)" in cell(instance, "SERVERS")
            assert cell(instance, "VIA") == base
        screen.show_host(token_at)
        await pilot.pause()
        detail = str(screen.query_one("#fleet-detail", Static).render())
        assert f"{ALIAS}* · llama.cpp · port {server_port} · ready · up " in detail  # no PID

        # an agent that stops reporting shows its last sample's age
        os.kill(open_agent.pid, signal.SIGTERM)
        assert open_agent.wait(timeout=10) == 0
        screen.action_refresh()
        for _ in range(150):
            await pilot.pause(0.1)
            if cell(open_at, "STATE").startswith("stale"):
                break
        assert cell(open_at, "STATE").startswith("stale: last sample ")
        assert cell(token_at, "STATE").startswith("ok (")

        # Prometheus down: one row named after the entry says why, in place of its instances;
        # up again (same port and storage): the instances are back and that row is gone
        prometheus = no_orphans[-1]
        prometheus.terminate()
        assert prometheus.wait(timeout=30) == 0
        screen.action_refresh()
        for _ in range(150):
            await pilot.pause(0.1)
            if "lab" in {str(k.value) for k in table.rows}:
                break
        assert {str(k.value) for k in table.rows} == {"local", "lab"}
        assert cell("lab", "STATE").startswith("unreachable: cannot reach")
        start_prometheus(tmp_path, no_orphans, {open_at: None, token_at: TOKEN},
                         port=int(base.rsplit(":", 1)[1]))  # fmt: skip
        screen.action_refresh()
        for _ in range(300):
            await pilot.pause(0.1)
            if "lab" not in {str(k.value) for k in table.rows}:
                break
        assert {str(k.value) for k in table.rows} == {"local", open_at, token_at}
        assert cell(token_at, "STATE").startswith("ok (")
    stale = run_cli("hosts", "--json", timeout=60)
    assert stale.returncode == 1
    rows = {h["name"]: h for h in json.loads(stale.stdout)["hosts"]}
    assert not rows[open_at]["reachable"] and rows[open_at]["reason"].endswith(" ago")
    assert rows[token_at]["reachable"]
    token_agent.send_signal(signal.SIGTERM)
    assert token_agent.wait(timeout=10) == 0  # Prometheus and llama-server: no_orphans stops them


@pytest.mark.slow
def test_the_fleet_reads_a_prometheus_behind_basic_auth(tmp_path, isolated_dirs, no_orphans):
    """`user_env` + `password_env`: the right pair lists the instance, a wrong one is one
    unreachable row saying why (Prometheus's own basic auth, bcrypt-hashed in its web config)."""
    bcrypt = pytest.importorskip("bcrypt", reason="bcrypt hashes Prometheus's web config")
    _agent, agent_port = start_agent(tmp_path / "agent.err", no_orphans)
    hashed = bcrypt.hashpw(b"s3cret-pw", bcrypt.gensalt(rounds=4)).decode()
    base = start_prometheus(tmp_path, no_orphans, {f"127.0.0.1:{agent_port}": None},
                            web={"basic_auth_users": {"prom-reader": hashed}})  # fmt: skip
    entry = {"prometheus": base, "name": "lab", "user_env": "PROM_USER",
             "password_env": "PROM_PASS"}  # fmt: skip
    isolated_dirs["config"].mkdir(parents=True, exist_ok=True)
    (isolated_dirs["config"] / "config.yaml").write_text(yaml.safe_dump({"hosts": [entry]}))
    right = dict(os.environ, PROM_USER="prom-reader", PROM_PASS="s3cret-pw")

    def listed() -> dict | None:
        done = run_cli("hosts", "--json", env=right, timeout=60)
        rows = {h["name"]: h for h in json.loads(done.stdout)["hosts"]}
        row = rows.get(f"127.0.0.1:{agent_port}")
        return row if done.returncode == 0 and row and row["reachable"] else None

    row = wait_for(listed, timeout=60, interval=1.0)
    assert row["summary"]["memory_total_bytes"] == meminfo_total()
    wrong = run_cli("hosts", "--json", env=dict(right, PROM_PASS="nope"), timeout=60)
    assert wrong.returncode == 1
    rows = json.loads(wrong.stdout)["hosts"]
    assert len(rows) == 1 and not rows[0]["reachable"], rows
    assert "401" in json.dumps(rows[0]), rows[0]
    assert "nope" not in wrong.stdout + wrong.stderr and "s3cret" not in wrong.stdout


NODE_EXPORTER = shutil.which("prometheus-node-exporter") or shutil.which("node_exporter")


@pytest.mark.slow
@pytest.mark.skipif(NODE_EXPORTER is None, reason="node_exporter missing (the prometheus package "
                    "recommends prometheus-node-exporter; .ci/run installs it)")  # fmt: skip
def test_a_textfile_through_node_exporter_is_listed_then_stale(tmp_path, isolated_dirs, no_orphans):
    """`export-metrics --textfile` read by a real node_exporter's textfile collector, scraped by
    Prometheus: the fleet lists the box; a file its writer left 10 minutes ago is stale."""
    textdir = tmp_path / "textfile"
    textdir.mkdir()
    written = run_cli("export-metrics", "--textfile", str(textdir), timeout=60)
    assert written.returncode == 0, written.stderr
    port = free_port()
    start_outside([NODE_EXPORTER, f"--web.listen-address=127.0.0.1:{port}",
                   "--collector.disable-defaults", "--collector.textfile",
                   f"--collector.textfile.directory={textdir}"], no_orphans)  # fmt: skip
    target = f"127.0.0.1:{port}"
    base = start_prometheus(tmp_path, no_orphans, {target: None})
    isolated_dirs["config"].mkdir(parents=True, exist_ok=True)
    (isolated_dirs["config"] / "config.yaml").write_text(
        yaml.safe_dump({"hosts": [{"prometheus": base, "name": "lab"}]})
    )

    def row(reachable: bool) -> dict | None:
        done = run_cli("hosts", "--json", timeout=60)
        rows = {h["name"]: h for h in json.loads(done.stdout)["hosts"]}
        got = rows.get(target)
        return got if got is not None and got["reachable"] is reachable else None

    listed = wait_for(lambda: row(True), timeout=60, interval=1.0)
    assert listed["transport"] == "prometheus"
    assert listed["summary"]["memory_total_bytes"] == meminfo_total()

    # the writer died 10 minutes ago: node_exporter still serves its file, the fleet says stale
    prom = textdir / "sparktop.prom"
    old = time.time() - 600
    text = re.sub(r"(?m)^sparktop_snapshot_timestamp_seconds \S+$",
                  f"sparktop_snapshot_timestamp_seconds {old}", prom.read_text())  # fmt: skip
    (textdir / ".sparktop.prom.tmp").write_text(text)
    (textdir / ".sparktop.prom.tmp").rename(prom)
    stale = wait_for(lambda: row(False), timeout=60, interval=1.0)
    assert re.fullmatch(r"stale: last sample 1\dm \d\ds ago", stale["reason"]), stale["reason"]

    # the same file from `export-metrics --every 900`: 10 minutes is not late for it
    text += (
        "# TYPE sparktop_textfile_interval_seconds gauge\nsparktop_textfile_interval_seconds 900\n"
    )
    (textdir / ".sparktop.prom.tmp").write_text(text)
    (textdir / ".sparktop.prom.tmp").rename(prom)
    wait_for(lambda: row(True), timeout=60, interval=1.0)
