#!/usr/bin/env python3
"""A throw-away single-node Slurm cluster on localhost, for testing `profiles/slurm`.

    python scripts/slurm/local_cluster.py start --dir /tmp/slurm   # prints `export SLURM_CONF=...`
    python scripts/slurm/local_cluster.py status --dir /tmp/slurm
    python scripts/slurm/local_cluster.py stop --dir /tmp/slurm

Everything lives under ``--dir``: configuration (slurm.conf, slurmdbd.conf, cgroup.conf), a
private MUNGE key and socket, state, spool, logs and, with accounting, a private MariaDB data
directory. Nothing under /etc is changed, no system service is started and the daemons listen on
free ports of 127.0.0.1 only; clients find the cluster through ``SLURM_CONF``. Every daemon is
started by this script in the foreground as a child in its own session and recorded in
``DIR/daemons.json``; ``stop`` cancels any remaining job, then stops exactly those processes (and
any `slurmstepd` still holding files under DIR), and nothing else.

Daemons: munged; with accounting (the default) MariaDB and slurmdbd, so that ``sacct`` works as
on a real cluster (the Snakemake executor plugin queries job states with ``sacct`` by default);
slurmctld; slurmd. ``--no-accounting`` is the lighter variant (the plugin must then be told
``--slurm-status-command squeue``).

Debian/Ubuntu packages are installed when missing (root only; idempotent, quiet):
slurm-wlm (slurmctld, slurmd, client commands), munge, and with accounting slurmdbd and
mariadb-server. Tested with Debian 12's Slurm 22.05.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

CLUSTER = "polyrefusal"
#: partitions of the single node: `cpu` (the default) and `gpu` (the same node; it lets the
#: profile's GPU-partition setting be exercised on a machine without GPUs).
PARTITIONS = ("cpu", "gpu")

BASE_BINARIES = {"slurmctld": "slurmctld", "slurmd": "slurmd", "sbatch": "slurm-client",
                 "munged": "munge"}
ACCOUNTING_BINARIES = {"slurmdbd": "slurmdbd", "mariadbd": "mariadb-server"}
APT_PACKAGES = ["slurm-wlm", "munge"]
APT_ACCOUNTING = ["slurmdbd", "mariadb-server"]


def log(msg: str) -> None:
    print(f"[local-slurm] {msg}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------- install
def missing_binaries(accounting: bool) -> list[str]:
    names = dict(BASE_BINARIES, **(ACCOUNTING_BINARIES if accounting else {}))
    path = os.environ.get("PATH", "") + ":/usr/sbin:/sbin"
    return [b for b in names if shutil.which(b, path=path) is None]


def ensure_installed(accounting: bool = True) -> None:
    """apt-get install the packages if any binary is missing (idempotent, quiet)."""
    if not missing_binaries(accounting):
        return
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        raise RuntimeError(f"Slurm is not installed ({', '.join(missing_binaries(accounting))} missing) "
                           "and cannot be installed here (needs root and apt-get)")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    pkgs = APT_PACKAGES + (APT_ACCOUNTING if accounting else [])
    log(f"installing {' '.join(pkgs)} (apt-get)")
    # policy-rc.d style: the packages' postinst must not start system services.
    policy = Path("/usr/sbin/policy-rc.d")
    created_policy = False
    if not policy.exists():
        policy.write_text("#!/bin/sh\nexit 101\n")
        policy.chmod(0o755)
        created_policy = True
    try:
        subprocess.run(["apt-get", "update", "-qq"], check=True, env=env, stdout=subprocess.DEVNULL)
        subprocess.run(["apt-get", "install", "-y", "-qq", "--no-install-recommends", *pkgs],
                       check=True, env=env, stdout=subprocess.DEVNULL)
    finally:
        if created_policy:
            policy.unlink()
    if missing_binaries(accounting):
        raise RuntimeError(f"still missing after apt-get: {missing_binaries(accounting)}")


def sbin(name: str) -> str:
    return shutil.which(name, path=os.environ.get("PATH", "") + ":/usr/sbin:/sbin") or name


# ---------------------------------------------------------------------------------- config
def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def node_hardware() -> dict[str, str]:
    """`slurmd -C`: the node line Slurm would accept for this machine."""
    out = subprocess.run([sbin("slurmd"), "-C"], capture_output=True, text=True, check=True).stdout
    fields = dict(tok.split("=", 1) for tok in out.split("\n")[0].split() if "=" in tok)
    # Leave some memory to the OS; Slurm drains a node whose RealMemory exceeds what it finds.
    fields["RealMemory"] = str(max(1000, int(fields.get("RealMemory", "2000")) - 512))
    return fields


def write_configs(d: Path, accounting: bool) -> dict:
    for sub in ("etc", "munge", "state", "spool", "log", "run", "db"):
        (d / sub).mkdir(parents=True, exist_ok=True)
    os.chmod(d / "munge", 0o755)  # munged wants o+x on the socket dir
    hw = node_hardware()
    node = hw["NodeName"]  # slurmd takes its node name from `hostname -s`
    ports = {"slurmctld": free_port(), "slurmd": free_port(), "slurmdbd": free_port(),
             "mysql": free_port()}
    munge_socket = d / "munge" / "munge.socket"
    key = d / "munge" / "munge.key"
    if not key.exists():
        key.write_bytes(os.urandom(1024))
        os.chmod(key, 0o600)
    auth = f"AuthType=auth/munge\nAuthInfo=socket={munge_socket}\n"
    hw_line = " ".join(f"{k}={v}" for k, v in hw.items() if k not in ("NodeName", "UpTime"))
    acct = (f"AccountingStorageType=accounting_storage/slurmdbd\n"
            f"AccountingStorageHost=127.0.0.1\nAccountingStoragePort={ports['slurmdbd']}\n"
            # For slurmdbd connections the MUNGE socket is given here, not by AuthInfo.
            f"AccountingStoragePass={munge_socket}\n"
            f"JobAcctGatherType=jobacct_gather/linux\nJobAcctGatherFrequency=30\n"
            if accounting else
            "AccountingStorageType=accounting_storage/none\nJobAcctGatherType=jobacct_gather/none\n")
    conf = f"""# generated by scripts/slurm/local_cluster.py: a single-node test cluster
ClusterName={CLUSTER}
SlurmctldHost={node}(127.0.0.1)
SlurmctldPort={ports['slurmctld']}
SlurmdPort={ports['slurmd']}
SlurmUser=root
SlurmdUser=root
{auth}CredType=cred/munge
StateSaveLocation={d}/state
SlurmdSpoolDir={d}/spool/%n
SlurmctldPidFile={d}/run/slurmctld.pid
SlurmdPidFile={d}/run/slurmd.pid
SlurmctldLogFile={d}/log/slurmctld.log
SlurmdLogFile={d}/log/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
# No cgroups: works in containers and unprivileged VMs alike.
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
MpiDefault=none
SwitchType=switch/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
SchedulerType=sched/backfill
ReturnToService=2
SlurmdParameters=config_overrides
# Finished jobs stay visible to squeue/scontrol this long (the plugin's squeue mode needs it).
MinJobAge=300
KillWait=5
InactiveLimit=0
SlurmctldTimeout=60
SlurmdTimeout=60
{acct}JobCompType=jobcomp/filetxt
JobCompLoc={d}/log/jobcomp.log
NodeName={node} NodeAddr=127.0.0.1 {hw_line} State=UNKNOWN
PartitionName={PARTITIONS[0]} Nodes={node} Default=YES MaxTime=INFINITE State=UP
PartitionName={PARTITIONS[1]} Nodes={node} Default=NO MaxTime=INFINITE State=UP
"""
    (d / "etc" / "slurm.conf").write_text(conf)
    # Read only if a cgroup plugin is configured; written so slurmd never falls back to /etc.
    (d / "etc" / "cgroup.conf").write_text("CgroupPlugin=autodetect\nIgnoreSystemd=yes\n")
    if accounting:
        dbd = d / "etc" / "slurmdbd.conf"
        dbd.write_text(f"""# generated by scripts/slurm/local_cluster.py
{auth}DbdHost=localhost
DbdAddr=127.0.0.1
DbdPort={ports['slurmdbd']}
SlurmUser=root
PidFile={d}/run/slurmdbd.pid
LogFile={d}/log/slurmdbd.log
DebugLevel=info
StorageType=accounting_storage/mysql
StorageHost=127.0.0.1
StoragePort={ports['mysql']}
StorageUser=slurm
StoragePass=polyrefusal
StorageLoc=slurm_acct_db
""")
        os.chmod(dbd, 0o600)  # slurmdbd refuses a readable config
    # The executor plugin's job step (snakemake-executor-plugin-slurm-jobstep) drops every SLURM_*
    # variable, SLURM_CONF included, before its nested `srun`; on a real cluster srun then reads
    # /etc/slurm/slurm.conf. This cluster lives in d, so `srun` is reached through a shim on PATH
    # (client_env puts d/bin first) that sets SLURM_CONF again. Nothing outside d is changed.
    (d / "bin").mkdir(exist_ok=True)
    real_srun = shutil.which("srun") or "/usr/bin/srun"
    shim = d / "bin" / "srun"
    shim.write_text(f'#!/bin/sh\nSLURM_CONF={d}/etc/slurm.conf exec {real_srun} "$@"\n')
    shim.chmod(0o755)
    info = {"dir": str(d), "node": node, "ports": ports, "accounting": accounting,
            "slurm_conf": str(d / "etc" / "slurm.conf"), "munge_socket": str(munge_socket),
            "partitions": list(PARTITIONS)}
    (d / "cluster.json").write_text(json.dumps(info, indent=1))
    return info


# ---------------------------------------------------------------------------------- daemons
def client_env(d: Path) -> dict:
    env = dict(os.environ)
    env["SLURM_CONF"] = str(d / "etc" / "slurm.conf")
    env["PATH"] = f"{d / 'bin'}:{env.get('PATH', '')}:/usr/sbin:/sbin"
    return env


def _record(d: Path, name: str, pid: int) -> None:
    path = d / "daemons.json"
    daemons = json.loads(path.read_text()) if path.exists() else []
    daemons.append({"name": name, "pid": pid})
    path.write_text(json.dumps(daemons))


def _spawn(d: Path, name: str, cmd: list[str]) -> subprocess.Popen:
    out = open(d / "log" / f"{name}.stdout", "ab")
    proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                            env=client_env(d), start_new_session=True, cwd=d)
    out.close()
    _record(d, name, proc.pid)
    return proc


def _wait(what: str, check, timeout: float, proc: subprocess.Popen | None = None, logfile: Path | None = None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            tail = logfile.read_text(errors="replace")[-3000:] if logfile and logfile.exists() else ""
            raise RuntimeError(f"{what}: process exited with {proc.returncode}\n{tail}")
        try:
            if check():
                return
        except Exception:  # noqa: BLE001 - not up yet
            pass
        time.sleep(0.2)
    tail = logfile.read_text(errors="replace")[-3000:] if logfile and logfile.exists() else ""
    raise RuntimeError(f"timed out after {timeout:.0f}s waiting for {what}\n{tail}")


def _ok(cmd: list[str], d: Path) -> bool:
    return subprocess.run(cmd, env=client_env(d), capture_output=True, timeout=20).returncode == 0


def start(d: Path | str, accounting: bool = True, install: bool = True, timeout: float = 120) -> dict:
    """Start the cluster; returns its info (slurm_conf: the SLURM_CONF clients need)."""
    d = Path(d).resolve()
    if (d / "daemons.json").exists() and any(_alive(x["pid"]) for x in json.loads((d / "daemons.json").read_text())):
        raise RuntimeError(f"a cluster is already running from {d} (stop it first)")
    if install:
        ensure_installed(accounting)
    (d / "daemons.json").unlink(missing_ok=True)
    t0 = time.monotonic()
    info = write_configs(d, accounting)
    try:
        sock = Path(info["munge_socket"])
        munged = _spawn(d, "munged", [sbin("munged"), "-F", "--force", f"--socket={sock}",
                                      f"--key-file={d}/munge/munge.key", f"--pid-file={d}/munge/munged.pid",
                                      f"--seed-file={d}/munge/munged.seed", f"--log-file={d}/log/munged.log",
                                      "--num-threads=2"])
        _wait("munged", lambda: sock.exists(), 30, munged, d / "log" / "munged.log")
        if accounting:
            _start_accounting(d, info)
        ctld = _spawn(d, "slurmctld", [sbin("slurmctld"), "-D", "-i", "-f", info["slurm_conf"]])
        _wait("slurmctld", lambda: _ok(["scontrol", "ping"], d) and "UP" in subprocess.run(
            ["scontrol", "ping"], env=client_env(d), capture_output=True, text=True).stdout,
            60, ctld, d / "log" / "slurmctld.log")
        slurmd = _spawn(d, "slurmd", [sbin("slurmd"), "-D", "-f", info["slurm_conf"]])

        def node_idle() -> bool:
            out = subprocess.run(["sinfo", "-h", "-N", "-o", "%t"], env=client_env(d),
                                 capture_output=True, text=True, timeout=20).stdout.split()
            return bool(out) and all(s == "idle" for s in out)

        _wait("the node to be idle (sinfo)", node_idle, timeout, slurmd, d / "log" / "slurmd.log")
    except BaseException:
        stop(d)
        raise
    info["startup_s"] = round(time.monotonic() - t0, 1)
    (d / "cluster.json").write_text(json.dumps(info, indent=1))
    log(f"cluster {CLUSTER!r} up in {info['startup_s']}s (accounting: {accounting}); "
        f"export SLURM_CONF={info['slurm_conf']} PATH={d / 'bin'}:$PATH")
    return info


def _start_accounting(d: Path, info: dict) -> None:
    db = d / "db"
    mysock = d / "run" / "mysqld.sock"
    if not (db / "mysql").exists():
        subprocess.run([sbin("mariadb-install-db"), "--no-defaults", f"--datadir={db}", "--user=root",
                        "--auth-root-authentication-method=normal", "--skip-test-db"],
                       check=True, capture_output=True, cwd=d)
    maria = _spawn(d, "mariadbd", [sbin("mariadbd"), "--no-defaults", f"--datadir={db}", "--user=root",
                                   f"--socket={mysock}", f"--port={info['ports']['mysql']}",
                                   "--bind-address=127.0.0.1", f"--pid-file={d}/run/mariadbd.pid",
                                   f"--log-error={d}/log/mariadbd.log", "--skip-log-bin",
                                   "--innodb-buffer-pool-size=32M", "--performance-schema=OFF",
                                   "--innodb-log-file-size=16M", "--max-connections=40",
                                   "--innodb-lock-wait-timeout=900"])
    client = shutil.which("mariadb") or shutil.which("mysql") or "mariadb"
    sql = ["CREATE USER IF NOT EXISTS 'slurm'@'127.0.0.1' IDENTIFIED BY 'polyrefusal'",
           "CREATE USER IF NOT EXISTS 'slurm'@'localhost' IDENTIFIED BY 'polyrefusal'",
           "GRANT ALL ON slurm_acct_db.* TO 'slurm'@'127.0.0.1'",
           "GRANT ALL ON slurm_acct_db.* TO 'slurm'@'localhost'", "FLUSH PRIVILEGES"]
    _wait("mariadb", lambda: _ok([client, "--no-defaults", f"--socket={mysock}", "-uroot", "-e", "SELECT 1"], d),
          60, maria, d / "log" / "mariadbd.log")
    subprocess.run([client, "--no-defaults", f"--socket={mysock}", "-uroot", "-e", "; ".join(sql)],
                   check=True, capture_output=True)
    dbd = _spawn(d, "slurmdbd", [sbin("slurmdbd"), "-D"])
    # The cluster must be known to the database before slurmctld registers with it.
    _wait("slurmdbd (sacctmgr add cluster)",
          lambda: _ok(["sacctmgr", "-i", "add", "cluster", CLUSTER], d)
          or CLUSTER in subprocess.run(["sacctmgr", "-n", "-P", "list", "cluster", "format=cluster"],
                                       env=client_env(d), capture_output=True, text=True).stdout,
          60, dbd, d / "log" / "slurmdbd.log")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie child of ours counts as gone
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _reap(pid: int) -> None:
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


def _stepds_under(d: Path) -> list[int]:
    """slurmstepd processes (job steps) holding files under d: left over only if a job was
    still running when the cluster stopped."""
    pids = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            if not (proc / "comm").read_text().startswith("slurmstepd"):
                continue
            for fd in (proc / "fd").iterdir():
                if os.readlink(fd).startswith(str(d)):
                    pids.append(int(proc.name))
                    break
        except OSError:
            continue
    return pids


def stop(d: Path | str, timeout: float = 20) -> list[str]:
    """Cancel remaining jobs and stop every daemon this script started from d (idempotent).
    Returns the names of the daemons stopped."""
    d = Path(d).resolve()
    path = d / "daemons.json"
    if not path.exists():
        return []
    daemons = json.loads(path.read_text())
    names = {x["name"] for x in daemons if _alive(x["pid"])}
    if {"slurmctld", "slurmd"} <= names:
        subprocess.run(["scancel", "--full", "--cluster", CLUSTER, "-u", str(os.geteuid())],
                       env=client_env(d), capture_output=True, timeout=30)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            out = subprocess.run(["squeue", "-h", "-t", "RUNNING,PENDING,COMPLETING,CONFIGURING", "-o", "%i"],
                                 env=client_env(d), capture_output=True, text=True, timeout=20)
            if out.returncode != 0 or not out.stdout.strip():
                break
            time.sleep(0.5)
    stopped = []
    # Reverse start order: slurmd, slurmctld, slurmdbd, mariadbd, munged.
    for x in reversed(daemons):
        pid = x["pid"]
        if not _alive(pid):
            _reap(pid)
            continue
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            continue
        deadline = time.monotonic() + timeout
        while _alive(pid) and time.monotonic() < deadline:
            _reap(pid)
            time.sleep(0.1)
        if _alive(pid):
            log(f"{x['name']} (pid {pid}) ignored SIGTERM: SIGKILL")
            try:
                os.killpg(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            time.sleep(0.2)
        _reap(pid)
        stopped.append(x["name"])
    for pid in _stepds_under(d):
        log(f"killing leftover slurmstepd {pid}")
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    path.unlink()
    if stopped:
        log(f"stopped {', '.join(stopped)}")
    return stopped


def running(d: Path | str) -> list[dict]:
    path = Path(d).resolve() / "daemons.json"
    if not path.exists():
        return []
    return [x for x in json.loads(path.read_text()) if _alive(x["pid"])]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("action", choices=["start", "stop", "status", "install"])
    p.add_argument("--dir", default=os.environ.get("POLYREFUSAL_SLURM_DIR", "/tmp/polyrefusal-slurm"))
    p.add_argument("--no-accounting", action="store_true", help="no MariaDB/slurmdbd (sacct will not work)")
    args = p.parse_args(argv)
    d = Path(args.dir)
    if args.action == "install":
        ensure_installed(not args.no_accounting)
    elif args.action == "start":
        d.mkdir(parents=True, exist_ok=True)
        info = start(d, accounting=not args.no_accounting)
        print(f"export SLURM_CONF={info['slurm_conf']} PATH={d.resolve() / 'bin'}:$PATH")
    elif args.action == "stop":
        stop(d)
    else:
        alive = running(d)
        for x in alive:
            print(f"{x['name']}\t{x['pid']}")
        return 0 if alive else 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
