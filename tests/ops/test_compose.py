"""The production compose file is checked without a Docker engine: the compose specification's
JSON schema (docker/compose-spec.json, from Debian's docker-compose 1.29.2), `docker-compose config`
where Debian's docker-compose is installed, and the operational rules below."""
from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker" / "compose.yml"
ONE_SHOT = {"migrate"}


def env_example() -> dict[str, str]:
    out = {}
    for line in (ROOT / "docker" / ".env.example").read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            key, _, value = line.partition("=")
            out[key.strip()] = value.strip()
    return out


def interpolate(text: str, env: dict[str, str]) -> str:
    """${VAR}, ${VAR:-default}, ${VAR:?error}; $$ is a literal $ (compose's rules)."""
    def one(m):
        if m.group(0) == "$$":
            return "$"
        name, op, arg = m.group(1), m.group(2) or "", m.group(3) or ""
        if op == ":?" and not env.get(name):
            raise AssertionError(f"{name} must be set: {arg}")
        if op == ":-" and not env.get(name):
            return arg
        return env.get(name, "")
    return re.sub(r"\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(:-|:\?)?([^}]*)\}", one, text)


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load(interpolate(COMPOSE.read_text(), env_example()))


def test_compose_matches_the_compose_schema(compose):
    import jsonschema

    schema = json.loads((ROOT / "docker" / "compose-spec.json").read_text())
    validator = jsonschema.Draft7Validator(schema)
    validator.validate(compose)
    broken = dict(compose, services={**compose["services"], "web": {**compose["services"]["web"], "healthcheck": {"interval": 5}}})
    with pytest.raises(jsonschema.ValidationError):  # the check can fail
        validator.validate(broken)


def test_docker_compose_config_accepts_it(tmp_path):
    exe = shutil.which("docker-compose")
    assert exe, "Debian's docker-compose is missing (make test installs it: scripts/system_deps.sh)"
    (tmp_path / "docker").mkdir()
    shutil.copy(COMPOSE, tmp_path / "docker" / "compose.yml")
    shutil.copy(ROOT / "docker" / ".env.example", tmp_path / "docker" / ".env")
    shutil.copy(ROOT / "docker" / "seccomp-worker.json", tmp_path / "docker" / "seccomp-worker.json")
    r = subprocess.run([exe, "-f", "docker/compose.yml", "--env-file", "docker/.env", "--profile", "gpu", "config", "-q"],
                       cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    # the smoke's override (scripts/compose_smoke.sh) on top of it validates too
    (tmp_path / "smoke").mkdir()
    (tmp_path / "smoke" / ".env").write_text((ROOT / "docker" / ".env.example").read_text() + "\nSMOKE_IMAGE=x\n"
                                             "SMOKE_DATABASE_URL=postgres://h/db\nSMOKE_BROKER_URL=redis://h/5\n")
    shutil.copy(ROOT / "docker" / "compose.smoke.yml", tmp_path / "docker" / "compose.smoke.yml")
    r = subprocess.run([exe, "-p", "cpsmoke", "--project-directory", "smoke", "-f", "docker/compose.yml",
                        "-f", "docker/compose.smoke.yml", "config", "-q"], cwd=tmp_path, capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0, r.stderr
    # a seccomp profile compose cannot read fails the check
    (tmp_path / "docker" / "seccomp-worker.json").unlink()
    r = subprocess.run([exe, "-f", "docker/compose.yml", "--env-file", "docker/.env", "config", "-q"],
                       cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert r.returncode != 0 and "seccomp" in r.stderr


def test_every_long_running_service_has_a_health_check(compose):
    services = compose["services"]
    assert {"postgres", "redis", "web", "worker-cpu", "worker-gpu", "beat", "flower", "migrate"} <= set(services)
    for name, svc in services.items():
        if name in ONE_SHOT:
            assert svc.get("restart") == "no"
            continue
        check = svc.get("healthcheck")
        assert check and check.get("test"), f"{name} has no health check"
        assert check.get("interval") and check.get("retries"), name


def test_one_beat_and_every_worker_consumes_the_ops_queue(compose):
    services = compose["services"]
    beats = [n for n, s in services.items() if "beat" in " ".join(map(str, s.get("command") or []))]
    assert beats == ["beat"]
    assert "deploy" not in services["beat"] or services["beat"]["deploy"].get("replicas", 1) == 1
    for name in ("worker-cpu", "worker-gpu"):
        cmd = services[name]["command"]
        queues = cmd[cmd.index("-Q") + 1].split(",")
        assert "ops" in queues, name
        assert services[name]["environment"]["WORKER_NAME"] in cmd[cmd.index("-n") + 1]


def test_gpu_worker_declares_its_device_and_concurrency(compose):
    gpu = compose["services"]["worker-gpu"]
    devices = gpu["deploy"]["resources"]["reservations"]["devices"]
    assert devices and devices[0]["driver"] == "nvidia" and "gpu" in devices[0]["capabilities"]
    assert devices[0].get("device_ids") == ["0"] or devices[0].get("count") == 1
    assert gpu["environment"]["GPU_WORKER_CONCURRENCY"] in ("auto",) or gpu["environment"]["GPU_WORKER_CONCURRENCY"].isdigit()
    assert gpu["command"][:3] == ["python", "-m", "courseplatform.submissions.gpu"]
    assert int(gpu["environment"]["CELERY_VISIBILITY_TIMEOUT"]) >= 3600  # longer than any GPU grading


def test_concurrency_from_device_memory_and_pack_needs(tmp_path):
    from courseplatform.submissions.gpu import DEFAULT_GPU_MEMORY_MB, concurrency_for, pack_gpu_memory_mb

    assert concurrency_for(None, [4000]) == 1  # no device: one at a time
    assert concurrency_for(141_000, [8000], reserve_mb=2048) == 16  # capped
    assert concurrency_for(24_000, [8000, 5000], reserve_mb=2048) == 2  # the largest need decides
    assert concurrency_for(4_000, [8000], reserve_mb=2048) == 1
    (tmp_path / "assignment.toml").write_text('title = "x"\n[limits]\ngpu_memory_mb = 6000\n')
    assert pack_gpu_memory_mb(tmp_path) == 6000
    (tmp_path / "assignment.toml").write_text('title = "x"\n[limits]\nwall_s = 5\n')
    assert pack_gpu_memory_mb(tmp_path) == DEFAULT_GPU_MEMORY_MB


def test_every_worker_has_a_host_memory_ceiling(compose):
    """The trusted processes of a worker (and their sandboxes) live under a container memory limit:
    one runaway grade can never take the host."""
    workers = {name: svc for name, svc in compose["services"].items() if name.startswith("worker")}
    assert set(workers) >= {"worker-cpu", "worker-gpu"}
    for name, svc in workers.items():
        limit = str(svc.get("mem_limit", ""))
        assert limit[:-1].isdigit() and limit[-1] in "gm", (name, limit)


# The least privileges the sandbox works with inside the worker container, found by trying
# (scripts/worker_privileges.sh; README, "Production: docker/"): a change that widens them fails here.
WORKER_CAPS = ["SYS_ADMIN", "NET_ADMIN", "SETUID", "SETGID", "CHOWN", "DAC_OVERRIDE"]


def test_workers_get_exactly_the_least_privileges_and_nothing_else_gets_any(compose):
    services = compose["services"]
    workers = {n: s for n, s in services.items() if n.startswith("worker")}
    assert set(workers) == {"worker-cpu", "worker-gpu"}
    for name, svc in workers.items():
        assert not svc.get("privileged"), name
        assert svc["cap_drop"] == ["ALL"], name
        assert svc["cap_add"] == WORKER_CAPS, name
        opts = svc["security_opt"]
        assert "seccomp=docker/seccomp-worker.json" in opts and "seccomp=unconfined" not in opts, name
        assert not any(o.startswith(("systempaths=", "label=disable")) for o in opts), name
        assert svc["entrypoint"] == ["/usr/bin/tini", "--", "docker/worker-entrypoint.sh"], name
        for vol in svc.get("volumes", []):
            assert "/sys" not in str(vol) and "docker.sock" not in str(vol), (name, vol)
        assert svc.get("pid") != "host" and svc.get("network_mode") != "host" and svc.get("ipc") != "host", name
        assert not svc.get("devices") and not svc.get("userns_mode"), name
    for name, svc in services.items():
        if name in workers:
            continue
        assert not svc.get("privileged") and not svc.get("cap_add"), name
        assert not any("unconfined" in o for o in svc.get("security_opt", [])), name
        assert svc.get("user") != "root", name


def test_the_worker_seccomp_profile_admits_the_sandbox_and_refuses_the_rest():
    profile = json.loads((ROOT / "docker" / "seccomp-worker.json").read_text())
    assert profile["defaultAction"] == "SCMP_ACT_ALLOW"
    refused = {n for rule in profile["syscalls"] if rule["action"] == "SCMP_ACT_ERRNO" and not rule.get("args")
               for n in rule["names"]}
    # the sandbox's own steps must stay possible
    assert not refused & {"unshare", "mount", "umount2", "pivot_root", "sethostname", "keyctl", "seccomp", "prctl",
                          "setresuid", "setresgid", "clone"}
    assert {"ptrace", "bpf", "perf_event_open", "userfaultfd", "io_uring_setup", "kexec_load", "init_module",
            "finit_module", "open_by_handle_at", "setns", "process_vm_writev", "add_key", "fsopen",
            "clone3"} <= refused | {n for rule in profile["syscalls"] if rule.get("errnoRet") == 38 for n in rule["names"]}
    # namespaces the sandbox never makes: refused by flag, for unshare and clone alike
    by_flag = {(rule["names"][0], rule["args"][0]["value"]) for rule in profile["syscalls"] if rule.get("args")}
    for flag in (0x10000000, 0x02000000, 0x00000080):  # CLONE_NEWUSER, CLONE_NEWCGROUP, CLONE_NEWTIME
        assert {("unshare", flag), ("clone", flag)} <= by_flag


def test_the_worker_entrypoint_opens_only_the_cgroups_the_sandbox_uses():
    text = (ROOT / "docker" / "worker-entrypoint.sh").read_text()
    code = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#"))
    assert "(memory|pids|cpu|cpuacct)" in code and "remount,bind,rw" in code
    assert "devices" not in code and code.rstrip().endswith('exec "$@"')
