"""sparktop's figures in the Prometheus format (issue 17): the families built from a Snapshot,
`promtool check metrics` on them, the agent's /metrics behind its token, the textfile."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from conftest import free_port, load_fake_nvml, machine_roots, run_cli, wait_for
from prometheus_client.parser import text_string_to_metric_families

from sparktop.fleet.metrics import Champion, SnapshotCollector, exposition, registry_for
from sparktop.snapshot import READY, DownloadInfo, ServerInfo, Snapshot

TOKEN = "metrics-" + "5be1c0d2"


def spark_snapshot() -> Snapshot:
    """The DGX Spark fixture machine, with one server and two download records."""
    import dataclasses

    from sparktop.probes.system import SystemProbe

    probe = SystemProbe(machine_roots("spark"), nvml=load_fake_nvml("spark"))
    snapshot = probe.collect()
    probe.close()
    server = ServerInfo(name="qwen", engine="llama.cpp", pid=4242, port=8080, health=READY,
                        prompt_tps=850.0, gen_tps=42.5, kv_usage=0.25, running=1, waiting=2,
                        rss_bytes=1 << 30, gpu_bytes=2 << 30, prompt_tokens_total=1200.0,
                        gen_tokens_total=345.0,
                        catalog_name="qwen-q4")  # fmt: skip
    downloads = (
        DownloadInfo(id="a1", repo="org/model", state="failed", total_bytes=100, done_bytes=5),
        DownloadInfo(id="b2", repo="org/model", state="downloading", total_bytes=100,
                     done_bytes=40),
    )  # fmt: skip
    return dataclasses.replace(snapshot, servers=(server,), downloads=downloads)


def families(text: str) -> dict[str, list]:
    """name → samples (name, labels, value) of an exposition."""
    out: dict[str, list] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out.setdefault(sample.name, []).append(sample)
    return out


def exposed(snapshot: Snapshot, accept: str = "") -> tuple[str, str]:
    champions = (Champion("chat", "qwen-q4", 900.0, 45.0),)
    registry = registry_for(SnapshotCollector(lambda: snapshot, lambda: champions, "9.9"))
    body, content_type = exposition(registry, accept)
    return body.decode(), content_type


def test_families_from_a_snapshot_have_units_labels_and_no_pids():
    snapshot = spark_snapshot()
    text, content_type = exposed(snapshot)
    assert content_type.startswith("text/plain; version=0.0.4")
    got = families(text)
    assert got["sparktop_memory_total_bytes"][0].value == snapshot.memory.total_bytes
    assert got["sparktop_memory_unified"][0].value == 1.0
    assert got["sparktop_memory_gpu_bytes"][0].value == snapshot.gpu_held_bytes
    gpu = got["sparktop_gpu_memory_used_bytes"][0]
    assert gpu.labels["name"] == "NVIDIA GB10" and gpu.labels["gpu"] == "0"
    build = got["sparktop_build_info"][0]
    assert build.labels == {"version": "9.9", "hostname": snapshot.hostname}
    labels = {"served_name": "qwen", "engine": "llama.cpp", "port": "8080",
              "catalog_name": "qwen-q4", "server_container": ""}  # fmt: skip
    health = {s.labels["health"]: s.value for s in got["sparktop_server_health"]}
    assert health["ready"] == 1.0 and health["crashed"] == 0.0 and len(health) == 6
    assert got["sparktop_server_generation_tokens_total"][0].labels == labels
    assert got["sparktop_server_generation_tokens_total"][0].value == 345.0
    assert got["sparktop_server_prompt_tokens_total"][0].value == 1200.0
    assert got["sparktop_server_generation_tokens_per_second"][0].value == 42.5
    assert got["sparktop_server_kv_cache_usage_ratio"][0].value == 0.25
    assert got["sparktop_server_requests_waiting"][0].value == 2
    # the newest record of a repository only: its state, done and total
    (state,) = got["sparktop_download_state"]
    assert state.labels == {"repo": "org/model", "source": "sparktop", "state": "downloading"}
    assert got["sparktop_download_done_bytes"][0].value == 40
    champion = got["sparktop_bench_champion_decode_tokens_per_second"][0]
    assert champion.labels == {"mode": "chat", "model": "qwen-q4"} and champion.value == 45.0
    assert "4242" not in text  # no PID anywhere, no timestamp label
    for samples in got.values():
        for sample in samples:
            assert not {"pid", "time", "timestamp"} & set(sample.labels)
    assert "# HELP sparktop_memory_total_bytes " in text

    om, om_type = exposed(snapshot, "application/openmetrics-text; version=1.0.0")
    assert om_type.startswith("application/openmetrics-text")
    assert om.rstrip().endswith("# EOF") and "# UNIT sparktop_memory_total_bytes bytes" in om


def test_a_restarted_server_is_exported_live_and_a_refetched_download_kept():
    """A crashed record kept beside the server started again under the same name and port is
    not what Prometheus sees; a repository downloaded again is the newest, not dropped."""
    import dataclasses

    from sparktop.fleet.metrics import MAX_DOWNLOADS
    from sparktop.snapshot import CRASHED

    snapshot = spark_snapshot()
    live = snapshot.servers[0]
    crashed = dataclasses.replace(live, pid=None, health=CRASHED, gen_tokens_total=None)
    old = DownloadInfo(id="a0", repo="org/again", state="done", total_bytes=9, done_bytes=9)
    others = tuple(DownloadInfo(id=f"r{i}", repo=f"org/r{i}", state="done", total_bytes=1,
                                done_bytes=1) for i in range(MAX_DOWNLOADS))  # fmt: skip
    again = DownloadInfo(id="a1", repo="org/again", state="downloading", total_bytes=9,
                         done_bytes=3)  # fmt: skip
    for servers in ((crashed, live), (live, crashed)):
        snap = dataclasses.replace(snapshot, servers=servers, downloads=(old, *others, again))
        got = families(exposed(snap)[0])
        assert [s.value for s in got["sparktop_server_up"]] == [1.0]
        assert got["sparktop_server_generation_tokens_total"][0].value == 345.0
        states = {s.labels["repo"]: s.labels["state"] for s in got["sparktop_download_state"]}
        assert len(states) == MAX_DOWNLOADS and states["org/again"] == "downloading"


PROMTOOL = shutil.which("promtool")


@pytest.mark.skipif(PROMTOOL is None, reason="promtool missing (apt-get install prometheus)")
def test_promtool_check_metrics_passes(tmp_path):
    text, _ = exposed(spark_snapshot())
    result = subprocess.run(
        [PROMTOOL, "check", "metrics"], input=text, capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() == "" and result.stderr.strip() == ""


def meminfo_total() -> int:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no MemTotal")


def _get(url: str, headers: dict[str, str]) -> tuple[int, str, str]:
    request = urllib.request.Request(url, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=30) as reply:
            return reply.status, reply.headers.get("Content-Type", ""), reply.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers.get("Content-Type", ""), exc.read().decode()


def start_agent(
    log: Path, started: list[subprocess.Popen], token: str | None = None, **env: str
) -> tuple[subprocess.Popen, int]:
    """A real `sparktop agent` on a free loopback port (with the token when given); waits
    until it listens."""
    port = free_port()
    argv = [sys.executable, "-m", "sparktop", "agent", "--port", str(port)]
    environ = dict(os.environ, **env)
    environ.pop("SPARKTOP_AGENT_TOKEN", None)
    if token is not None:
        environ["AGENT_TEST_TOKEN"] = token
        argv += ["--token-env", "AGENT_TEST_TOKEN"]
    with log.open("w") as err:
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                stderr=err, env=environ, start_new_session=True)  # fmt: skip
    started.append(proc)
    wait_for(lambda: "sparktop agent on" in log.read_text() or proc.poll() is not None, 30)
    assert proc.poll() is None, log.read_text()
    return proc, port


def test_agent_serves_metrics_behind_its_token(tmp_path, no_orphans):
    log = tmp_path / "agent.err"
    proc, port = start_agent(log, no_orphans, TOKEN)
    url = f"http://127.0.0.1:{port}/metrics"
    code, _, body = _get(url, {})
    assert code == 401 and "sparktop_" not in body
    auth = {"Authorization": f"Bearer {TOKEN}"}
    code, content_type, text = _get(url, auth)
    assert code == 200 and content_type.startswith("text/plain; version=0.0.4")
    got = families(text)
    assert got["sparktop_memory_total_bytes"][0].value == meminfo_total()
    assert _get(url, {"Authorization": f"bearer {TOKEN}"})[0] == 200  # scheme: any case
    assert _get(url, {"Authorization": f"Basic {TOKEN}"})[0] == 401
    assert _get(url, {"Authorization": f"Bearer {TOKEN}x"})[0] == 401
    code, content_type, om = _get(url, {**auth, "Accept": "application/openmetrics-text"})
    assert code == 200 and content_type.startswith("application/openmetrics-text")
    assert om.rstrip().endswith("# EOF")
    os.kill(proc.pid, signal.SIGTERM)
    assert proc.wait(timeout=10) == 0
    assert "GET /metrics 401" in log.read_text() and TOKEN not in log.read_text()


def test_textfile_is_written_atomically_and_readable(tmp_path):
    target = tmp_path / "textfile"
    target.mkdir()
    result = run_cli("export-metrics", "--textfile", str(target), timeout=60)
    assert result.returncode == 0, result.stderr
    prom = target / "sparktop.prom"
    got = families(prom.read_text())
    assert got["sparktop_memory_total_bytes"][0].value == meminfo_total()
    assert prom.stat().st_mode & 0o044 == 0o044  # node_exporter (another user) reads it
    assert [p.name for p in target.iterdir()] == ["sparktop.prom"]  # no temp file left

    # every N seconds: the file is replaced while it runs, never seen half-written; it says
    # how often it is written; a write that fails is said and tried again at the next tick
    prom.unlink()
    prom.mkdir()  # something in the way: the rename over it fails
    log = tmp_path / "export.err"
    with log.open("w") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "sparktop", "export-metrics", "--textfile", str(target),
             "--every", "1"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err,
            start_new_session=True,
        )  # fmt: skip
    try:
        wait_for(lambda: "trying again in 1 s" in log.read_text(), timeout=30)
        assert log.read_text().splitlines()[0] == (
            f"sparktop: cannot write {prom}: Is a directory (trying again in 1 s)"
        )
        prom.rmdir()
        wait_for(prom.is_file, timeout=30)
        stamps = set()
        deadline = time.monotonic() + 4
        while time.monotonic() < deadline:
            got = families(prom.read_text())
            stamps.add(got["sparktop_snapshot_timestamp_seconds"][0].value)
            assert got["sparktop_textfile_interval_seconds"][0].value == 1.0
            time.sleep(0.05)
        assert len(stamps) >= 2
    finally:
        os.kill(proc.pid, signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
    # stopped: the file goes, so node_exporter does not serve figures nobody updates
    assert not prom.exists() and list(target.iterdir()) == []


def test_export_metrics_bad_input_is_one_line(tmp_path):
    missing = run_cli("export-metrics", timeout=30)
    assert missing.returncode == 2
    afile = tmp_path / "file"
    afile.write_text("")
    result = run_cli("export-metrics", "--textfile", str(afile), timeout=30)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"sparktop: error: --textfile {afile}: not a directory"
    ]
    typo = tmp_path / "node-exporter" / "textfile"  # a mistyped path is not made
    result = run_cli("export-metrics", "--textfile", str(typo), timeout=30)
    assert result.returncode == 2 and not typo.parent.exists()
    assert result.stderr.strip().splitlines() == [
        f"sparktop: error: --textfile {typo}: no such directory (node_exporter's "
        "--collector.textfile.directory, which must exist)"
    ]
    bad = run_cli("export-metrics", "--textfile", str(tmp_path), "--every", "0", timeout=30)
    assert bad.returncode == 2 and "--every" in bad.stderr


DOCS = Path(__file__).resolve().parent.parent / "docs" / "grafana"


def test_grafana_dashboard_reads_only_families_sparktop_exports():
    import json
    import re

    dashboard = json.loads((DOCS / "sparktop.json").read_text())
    exprs = [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]
    titles = " ".join(p["title"] for p in dashboard["panels"])
    for wanted in ("Memory split", "Generation tokens/s", "KV cache", "Download progress"):
        assert wanted in titles
    exported = set(families(exposed(spark_snapshot())[0]))
    used = {name for expr in exprs for name in re.findall(r"sparktop_[a-z_]+", expr)}
    assert used and used <= exported, used - exported
    variables = dashboard["templating"]["list"]
    assert {v["name"] for v in variables} == {"datasource", "instance"}


@pytest.mark.skipif(PROMTOOL is None, reason="promtool missing (apt-get install prometheus)")
def test_shipped_scrape_config_passes_promtool(tmp_path):
    token = tmp_path / "agent.token"
    token.write_text("t\n")
    text = (DOCS / "prometheus-scrape.yml").read_text()
    assert "/etc/prometheus/sparktop-agent.token" in text
    config = tmp_path / "prometheus.yml"
    config.write_text(text.replace("/etc/prometheus/sparktop-agent.token", str(token)))
    result = subprocess.run([PROMTOOL, "check", "config", str(config)], capture_output=True,
                            text=True, timeout=30)  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
