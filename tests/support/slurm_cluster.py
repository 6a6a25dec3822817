"""A throw-away single-node Slurm cluster (Debian's slurm-wlm 22.05) with accounting, in a temp dir on free ports.

Started in dependency order, each step polled until it answers:
munged (own socket) → MariaDB (own datadir, loopback port) → slurmdbd → `sacctmgr` cluster + account →
slurmctld → slurmd (one node: this host's short name and CPUs) → `sinfo` says the node is idle.

Every daemon runs in the foreground as a child in its own session, so `remove()` ends exactly the processes
this cluster started (and their job steps), even when start-up failed half-way. The client commands
(`sbatch`, `squeue`, `sacct`, `scancel`, `scontrol`) find the cluster through ``SLURM_CONF``, which
:meth:`SlurmCluster.client_env` provides; `export_client_env()` sets it for this process and its children.

As root the daemons run as root (``SlurmUser=root``); proctrack/linuxproc and task/none avoid cgroups, which
a container rarely grants. Nothing is written outside the temp dir.
"""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from tests.support.processes import free_port, log_tail, stop_group

CLUSTER_NAME = "flightdeck"
ACCOUNT = "research"
PARTITION = "debug"
MUNGE_KEY = Path("/etc/munge/munge.key")
# A busy 2-core CI box can take a while to start MariaDB and the Slurm daemons; polls return as soon as ready.
START_TIMEOUT_S = 90


class SlurmCluster:
    def __init__(self) -> None:
        # Its own top-level dir: slurmd (as SlurmUser) and job steps must reach it; a pytest temp dir is 0700.
        self.root = Path(tempfile.mkdtemp(prefix="flightdeck-slurm-"))
        self.node = socket.gethostname().split(".")[0]
        self.cpus = os.cpu_count() or 1
        self.conf = self.root / "slurm.conf"
        self.munge_socket = self.root / "munge" / "munge.socket"
        self.ports = {name: free_port() for name in ("mysql", "slurmdbd", "slurmctld", "slurmd")}
        self._daemons: dict[str, subprocess.Popen] = {}

    # --------------------------------------------------------------------------------------------- life cycle

    def start(self) -> None:
        """Start the whole cluster; on any failure stop what already runs and raise with the failing log."""
        try:
            self._write_configs()
            self._start_munge()
            self._start_mariadb()
            self._start_daemon("slurmdbd", ["slurmdbd", "-D", "-s"], ready=self._dbd_answers)
            self._register_cluster()
            self._start_daemon("slurmctld", ["slurmctld", "-D", "-i", "-f", str(self.conf)],
                               ready=self._ctld_answers)
            self.start_slurmd()
        except BaseException:
            self.remove()
            raise

    def start_slurmd(self) -> None:
        """(Re)start the node daemon and wait until the controller lists the node as idle."""
        self._start_daemon("slurmd", ["slurmd", "-D", "-f", str(self.conf), "-N", self.node],
                           ready=lambda: self.node_state() == "idle")

    def kill_node(self) -> None:
        """The node dies: SIGKILL slurmd and every job step it started, as a lost machine would leave them."""
        popen = self._daemons.pop("slurmd")
        # slurmstepd processes live in their own sessions; find them (and their children) through /proc.
        steps = [pid for pid, command in _processes() if command.startswith("slurmstepd")]
        for pid in [*steps, *(child for step in steps for child in descendants(step))]:
            try:
                os.kill(pid, 9)
            except ProcessLookupError:
                pass
        popen.kill()
        popen.wait()

    def remove(self) -> None:
        """Stop every daemon this cluster started (reverse order) and delete the temp dir."""
        for name in ("slurmd", "slurmctld", "slurmdbd", "mariadb", "munged"):
            popen = self._daemons.pop(name, None)
            if popen is not None:
                stop_group(popen, grace=15)
        # Job steps outlive slurmd by design; the cluster owns them, so they go too.
        for pid, command in _processes():
            if command.startswith("slurmstepd") and str(self.root) in _environ_of(pid):
                _kill_tree(pid)
        shutil.rmtree(self.root, ignore_errors=True)

    # ------------------------------------------------------------------------------------------------ clients

    def client_env(self) -> dict[str, str]:
        return {"SLURM_CONF": str(self.conf)}

    def export_client_env(self) -> None:
        os.environ.update(self.client_env())

    def command(self, *args: str, check: bool = True, timeout: float = 60) -> str:
        """Run a Slurm client command against this cluster; its stdout."""
        result = subprocess.run(list(args), env={**os.environ, **self.client_env()}, capture_output=True,
                                text=True, timeout=timeout)
        if check and result.returncode != 0:
            raise RuntimeError(f"{' '.join(args)} failed ({result.returncode}): {result.stderr.strip()}")
        return result.stdout

    def node_state(self) -> str:
        out = self.command("sinfo", "-h", "-N", "-n", self.node, "-o", "%T", check=False, timeout=20)
        return out.strip().rstrip("*").lower()

    def job_state(self, job_id: str) -> str:
        """The controller's view of a job (squeue), "" once it left the queue."""
        return self.command("squeue", "-h", "-j", job_id, "-o", "%T", check=False, timeout=20).strip()

    def log(self, name: str, lines: int = 40) -> str:
        return log_tail(self.root / "log" / f"{name}.log", lines)

    # ------------------------------------------------------------------------------------------------ start-up

    def _write_configs(self) -> None:
        for sub in ("log", "run", "state", "spool", "munge", "mysql"):
            (self.root / sub).mkdir()
        self.root.chmod(0o755)
        munge = f"AuthType=auth/munge\nAuthInfo=socket={self.munge_socket}\n"
        self.conf.write_text(f"""\
ClusterName={CLUSTER_NAME}
SlurmctldHost={self.node}(127.0.0.1)
SlurmUser=root
SlurmdUser=root
SlurmctldPort={self.ports['slurmctld']}
SlurmdPort={self.ports['slurmd']}
{munge}CredType=cred/munge
StateSaveLocation={self.root}/state
SlurmdSpoolDir={self.root}/spool/%n
SlurmctldPidFile={self.root}/run/slurmctld.pid
SlurmdPidFile={self.root}/run/slurmd.pid
SlurmctldLogFile={self.root}/log/slurmctld.log
SlurmdLogFile={self.root}/log/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
MpiDefault=none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerType=sched/builtin
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=127.0.0.1
AccountingStoragePort={self.ports['slurmdbd']}
AccountingStorageTRES=cpu,mem,node,billing
# Connections to slurmdbd name their MUNGE socket here, not in AuthInfo.
AccountingStoragePass={self.munge_socket}
JobCompType=jobcomp/none
# Tests exercise time limits, requeues and a lost node: keep every reaction quick.
KillWait=15
SlurmdTimeout=10
SlurmctldTimeout=10
MessageTimeout=20
InactiveLimit=0
MinJobAge=600
ReturnToService=2
JobRequeue=1
NodeName={self.node} NodeAddr=127.0.0.1 CPUs={self.cpus} State=UNKNOWN
PartitionName={PARTITION} Nodes={self.node} Default=YES MaxTime=INFINITE State=UP OverSubscribe=NO
""")
        # slurmd reads cgroup.conf whenever one sits next to slurm.conf; nothing here uses cgroups.
        (self.root / "cgroup.conf").write_text("CgroupAutomount=no\n")
        dbd_conf = self.root / "slurmdbd.conf"
        dbd_conf.write_text(f"""\
{munge}DbdHost=localhost
DbdAddr=127.0.0.1
DbdPort={self.ports['slurmdbd']}
SlurmUser=root
LogFile={self.root}/log/slurmdbd.log
PidFile={self.root}/run/slurmdbd.pid
StorageType=accounting_storage/mysql
StorageHost=127.0.0.1
StoragePort={self.ports['mysql']}
StorageUser=root
StorageLoc=slurm_acct_db
""")
        dbd_conf.chmod(0o600)  # slurmdbd refuses a config others can read (it may hold the storage password)

    def _start_munge(self) -> None:
        key = self.root / "munge" / "munge.key"
        shutil.copyfile(MUNGE_KEY, key)
        key.chmod(0o600)
        self.root.joinpath("munge").chmod(0o700)
        self._start_daemon("munged", [
            "munged", "--foreground", "--force", f"--socket={self.munge_socket}", f"--key-file={key}",
            f"--pid-file={self.root}/run/munged.pid", f"--log-file={self.root}/log/munged.log",
            f"--seed-file={self.root}/munge/munged.seed",
        ], ready=self.munge_socket.exists)

    def _start_mariadb(self) -> None:
        data = self.root / "mysql"
        result = subprocess.run(["mariadb-install-db", "--no-defaults", f"--datadir={data}", "--user=root",
                                 "--auth-root-authentication-method=normal", "--skip-test-db"],
                                capture_output=True, text=True)
        if result.returncode != 0:
            raise RuntimeError(f"mariadb-install-db failed:\n{result.stdout}\n{result.stderr}")
        self._start_daemon("mariadb", [
            "mariadbd", "--no-defaults", f"--datadir={data}", "--user=root", "--bind-address=127.0.0.1",
            f"--port={self.ports['mysql']}", f"--socket={self.root}/run/mysqld.sock",
            f"--pid-file={self.root}/run/mysqld.pid", f"--log-error={self.root}/log/mariadb.log",
            "--skip-grant-tables", "--innodb-flush-log-at-trx-commit=0", "--innodb-buffer-pool-size=64M",
            "--skip-log-bin",
        ], ready=lambda: _port_open(self.ports["mysql"]))

    def _register_cluster(self) -> None:
        for args in (("add", "cluster", CLUSTER_NAME), ("add", "account", ACCOUNT, f"cluster={CLUSTER_NAME}"),
                     ("add", "user", "root", f"account={ACCOUNT}", f"cluster={CLUSTER_NAME}")):
            self.command("sacctmgr", "-i", *args)

    def _dbd_answers(self) -> bool:
        return _port_open(self.ports["slurmdbd"]) and subprocess.run(
            ["sacctmgr", "-n", "list", "cluster"], env={**os.environ, **self.client_env()}, capture_output=True,
            timeout=20).returncode == 0

    def _ctld_answers(self) -> bool:
        return subprocess.run(["scontrol", "ping"], env={**os.environ, **self.client_env()},
                              capture_output=True, text=True, timeout=20).stdout.count("UP") > 0

    def _start_daemon(self, name: str, command: list[str], *, ready) -> None:
        log_path = self.root / "log" / f"{name}.log"
        env = {**os.environ, **self.client_env()}
        if name == "slurmdbd":
            env["SLURM_CONF"] = str(self.conf)  # slurmdbd.conf is found next to it
        with (self.root / "log" / f"{name}.stdout").open("ab") as out:
            popen = subprocess.Popen(command, cwd=self.root, env=env, stdout=out, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        self._daemons[name] = popen
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if ready():
                return
            if popen.poll() is not None:
                raise RuntimeError(f"{name} exited ({popen.returncode}) before it was ready:\n"
                                   f"{log_tail(log_path)}\n{log_tail(log_path.with_suffix('.stdout'))}")
            time.sleep(0.2)
        raise RuntimeError(f"{name} not ready after {START_TIMEOUT_S}s:\n{log_tail(log_path)}")


def _port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(1)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _processes() -> list[tuple[int, str]]:
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            command = cmdline.read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
        except OSError:
            continue
        found.append((int(cmdline.parent.name), command))
    return found


def descendants(pid: int) -> list[int]:
    """Every process below ``pid`` (read from /proc, so it works whatever the process group)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            parent = int(stat.read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(parent, []).append(int(stat.parent.name))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def _kill_tree(pid: int) -> None:
    for target in [pid, *descendants(pid)]:
        try:
            os.kill(target, 9)
        except ProcessLookupError:
            pass


def _environ_of(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/environ").read_bytes().decode(errors="replace")
    except OSError:
        return ""
