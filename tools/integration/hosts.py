"""Hosts on one machine: network namespaces joined by a bridge, made and unmade by a check.

Each host is a network namespace (``ip netns``) with ``lo`` up and one veth whose other
end is on a bridge in the root namespace; the bridge holds the check's own address, so the
check can reach every host. No host has a default route and the bridge forwards nothing,
so traffic goes only between the hosts, the check and each host's loopback.

Losing a host is what :meth:`Network.lose` does: SIGKILL every process in its namespace
(``ip netns pids``), as a machine that loses power stops everything at once. Everything is
torn down by PID and by name, in :meth:`Network.close`; names start with :data:`PREFIX`,
so :func:`remove_leftovers` can clear what a killed earlier run left behind.
"""

from __future__ import annotations

import ipaddress
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

PREFIX = "airnub-mh-"
SUBNET = ipaddress.IPv4Network("10.213.0.0/24")
BRIDGE = f"{PREFIX}br"
CHECK_ADDRESS = str(SUBNET[254])  # the check's own end of the bridge, in the root namespace
PROBE = f"{PREFIX}probe"
IP_DEADLINE = 30.0  # seconds for one `ip` command
KILL_DEADLINE = 30.0  # seconds for a host's processes to be gone after SIGKILL


class HostsError(RuntimeError):
    """An ``ip`` command that failed, or a host that would not die: one line."""


def ip(*args: str, check: bool = True) -> str:
    """Run ``ip ARGS``; its stdout, or :class:`HostsError` naming the command."""
    try:
        done = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=IP_DEADLINE)
    except subprocess.TimeoutExpired:
        raise HostsError(f"ip {' '.join(args)}: no answer after {IP_DEADLINE:.0f} s") from None
    if check and done.returncode != 0:
        reason = done.stderr.strip().splitlines()[-1:] or [f"exit {done.returncode}"]
        raise HostsError(f"ip {' '.join(args)}: {reason[0]}")
    return done.stdout


def unavailable() -> str | None:
    """Why network namespaces cannot be made here, or None if they can (a probe is made)."""
    if shutil.which("ip") is None:
        return "the `ip` command (iproute2) is not installed"
    if os.geteuid() != 0:
        return "making network namespaces needs root"
    try:
        ip("netns", "del", PROBE, check=False)
        ip("netns", "add", PROBE)
        ip("netns", "del", PROBE)
    except HostsError as error:
        return f"cannot make a network namespace: {error}"
    return None


def namespaces() -> list[str]:
    """The names of the network namespaces that exist, as ``ip netns list`` gives them."""
    return parse_netns_list(ip("netns", "list"))


def parse_netns_list(text: str) -> list[str]:
    """``ip netns list`` prints ``NAME`` or ``NAME (id: N)`` per line."""
    return [line.split()[0] for line in text.splitlines() if line.strip()]


def links() -> list[str]:
    """The names of the root namespace's network interfaces."""
    return parse_link_names(ip("-o", "link", "show"))


def parse_link_names(text: str) -> list[str]:
    """``ip -o link show`` prints ``N: NAME@PEER: <...>`` per line; the names."""
    names = []
    for line in text.splitlines():
        parts = line.split(": ", 2)
        if len(parts) >= 2:
            names.append(parts[1].split("@", 1)[0])
    return names


def pids_in(namespace: str) -> list[int]:
    """Every process whose network namespace is ``namespace``."""
    return [int(pid) for pid in ip("netns", "pids", namespace, check=False).split()]


def kill_namespace(namespace: str) -> list[int]:
    """SIGKILL every process in ``namespace`` until none is left; returns those killed."""
    killed: list[int] = []
    deadline = time.monotonic() + KILL_DEADLINE
    while pids := pids_in(namespace):
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
                killed.append(pid)
            except ProcessLookupError:
                pass  # it ended by itself meanwhile
        if time.monotonic() > deadline:
            raise HostsError(f"{namespace}: processes {pids} still alive after SIGKILL")
        time.sleep(0.1)
    return sorted(set(killed))


def remove_leftovers() -> list[str]:
    """Remove what an earlier run left (killed before its teardown): every namespace and
    link named with :data:`PREFIX`, their processes killed first. Returns the names."""
    removed = []
    for namespace in namespaces():
        if namespace.startswith(PREFIX):
            kill_namespace(namespace)
            ip("netns", "del", namespace, check=False)
            removed.append(namespace)
    for link in links():
        if link.startswith(PREFIX):
            ip("link", "del", link, check=False)
            removed.append(link)
    return removed


@dataclass(frozen=True)
class Host:
    """Host ``number`` (1-253): namespace ``airnub-mh-host<N>`` at address 10.213.0.N."""

    number: int

    def __post_init__(self) -> None:
        if not 1 <= self.number <= 253:
            raise ValueError(f"host number {self.number}: must be from 1 to 253")

    @property
    def namespace(self) -> str:
        return f"{PREFIX}host{self.number}"

    @property
    def address(self) -> str:
        return str(SUBNET[self.number])

    @property
    def inner_link(self) -> str:  # in the host; interface names are at most 15 characters
        return f"{PREFIX}{self.number}"

    @property
    def outer_link(self) -> str:  # its peer on the bridge
        return f"{PREFIX}{self.number}p"

    def url(self, port: int, path: str = "") -> str:
        return f"http://{self.address}:{port}{path}"


@dataclass
class Spawned:
    host: Host
    name: str
    process: subprocess.Popen[bytes]
    log: Path


@dataclass
class Network:
    """Hosts on a bridge, and the processes started in them; a context manager that tears
    all of it down on the way out, whatever happened."""

    logs: Path
    hosts: dict[int, Host] = field(default_factory=dict)
    spawned: list[Spawned] = field(default_factory=list)
    bridge_made: bool = False

    def __enter__(self) -> Network:
        self.logs.mkdir(parents=True, exist_ok=True)
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _make_bridge(self) -> None:
        ip("link", "add", BRIDGE, "type", "bridge")
        self.bridge_made = True
        ip("addr", "add", f"{CHECK_ADDRESS}/{SUBNET.prefixlen}", "dev", BRIDGE)
        ip("link", "set", BRIDGE, "up")
        # What arrives on the bridge is never routed on, whatever the machine's ip_forward.
        Path(f"/proc/sys/net/ipv4/conf/{BRIDGE}/forwarding").write_text("0\n")

    def add(self, number: int) -> Host:
        """Make host ``number``: its namespace, ``lo`` up, a veth to the bridge, an address."""
        host = Host(number)
        if not self.bridge_made:
            self._make_bridge()
        ip("netns", "add", host.namespace)
        self.hosts[number] = host
        ip("link", "add", host.inner_link, "type", "veth", "peer", "name", host.outer_link)
        ip("link", "set", host.inner_link, "netns", host.namespace)
        ip("link", "set", host.outer_link, "master", BRIDGE, "up")
        inside = ("-n", host.namespace)
        ip(*inside, "link", "set", "lo", "up")
        ip(*inside, "addr", "add", f"{host.address}/{SUBNET.prefixlen}", "dev", host.inner_link)
        ip(*inside, "link", "set", host.inner_link, "up")
        return host

    def routes(self, host: Host) -> list[str]:
        """The host's routes, one per line (only its subnet's, if it is isolated)."""
        return [line for line in ip("-n", host.namespace, "route", "show").splitlines() if line]

    def spawn(
        self,
        host: Host,
        name: str,
        command: Sequence[str | os.PathLike[str]],
        env: dict[str, str],
        cwd: Path | None = None,
    ) -> subprocess.Popen[bytes]:
        """Start ``command`` in ``host``, in its own process group, logging to ``<name>.log``."""
        log = self.logs / f"{name}.log"
        with log.open("ab") as handle:
            process = subprocess.Popen(
                ["ip", "netns", "exec", host.namespace, *map(str, command)],
                env=env, cwd=cwd, stdin=subprocess.DEVNULL, stdout=handle,
                stderr=subprocess.STDOUT, start_new_session=True,
            )  # fmt: skip
        self.spawned.append(Spawned(host, name, process, log))
        return process

    def lose(self, host: Host) -> list[int]:
        """Kill every process in ``host`` at once, as a host that is lost; returns the PIDs."""
        killed = kill_namespace(host.namespace)
        self._reap(host)
        return killed

    def _reap(self, host: Host | None = None) -> None:
        """Collect the exit status of this check's own children (in ``host``, or all)."""
        for spawned in self.spawned:
            if host is None or spawned.host == host:
                try:
                    spawned.process.wait(timeout=KILL_DEADLINE)
                except subprocess.TimeoutExpired:
                    spawned.process.kill()
                    spawned.process.wait(timeout=KILL_DEADLINE)

    def close(self) -> None:
        """Kill each host's processes, delete its namespace and links, then the bridge."""
        problems = []
        for host in list(self.hosts.values()):
            try:
                self.lose(host)
            except HostsError as error:
                problems.append(str(error))
            ip("netns", "del", host.namespace, check=False)
            ip("link", "del", host.outer_link, check=False)  # gone with the namespace, usually
            del self.hosts[host.number]
        if self.bridge_made:
            ip("link", "del", BRIDGE, check=False)
            self.bridge_made = False
        if problems:
            raise HostsError("; ".join(problems))

    def log_tails(self, characters: int = 2000) -> str:
        """The end of every spawned process's log, for a failure report."""
        parts = []
        for spawned in self.spawned:
            text = spawned.log.read_text(errors="replace") if spawned.log.exists() else ""
            parts.append(
                f"--- {spawned.name} on {spawned.host.namespace} ---\n{text[-characters:]}"
            )
        return "\n".join(parts)
