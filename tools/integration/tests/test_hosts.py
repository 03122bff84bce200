"""hosts.py's pure parts: names and addresses of hosts, parsing `ip`'s output, and the
reasons a check is skipped. No namespace is made here: the multi-host check owns those
names, and a test making them could collide with a check running beside the suite."""

import shutil
import sys
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import hosts  # from its folder: tools/integration is not a package

NETNS_LIST = "airnub-mh-host2 (id: 7)\nairnub-mh-host1\nsomeone-else (id: 0)\n\n"
LINK_SHOW = (
    "1: lo: <LOOPBACK,UP,LOWER_UP> mtu 65536 qdisc noqueue state UNKNOWN\\    link/loopback\n"
    "5: airnub-mh-br: <BROADCAST,MULTICAST,UP,LOWER_UP> mtu 1500 qdisc noqueue\\    link/ether\n"
    "7: airnub-mh-1p@if6: <BROADCAST,MULTICAST,UP,LOWER_UP> mtu 1500 master airnub-mh-br\n"
)


def test_namespace_names_are_read_with_or_without_an_id():
    names = hosts.parse_netns_list(NETNS_LIST)
    assert names == ["airnub-mh-host2", "airnub-mh-host1", "someone-else"]


def test_link_names_drop_the_peer_suffix():
    assert hosts.parse_link_names(LINK_SHOW) == ["lo", "airnub-mh-br", "airnub-mh-1p"]


@given(st.integers(min_value=1, max_value=253))
def test_every_host_has_legal_unique_names_and_an_address_in_the_subnet(number):
    host = hosts.Host(number)
    names = [host.namespace, host.inner_link, host.outer_link]
    assert all(name.startswith(hosts.PREFIX) for name in names)
    assert max(len(host.inner_link), len(host.outer_link)) <= 15  # the kernel's limit
    assert len(set(names)) == 3
    assert host.address in {str(a) for a in hosts.SUBNET.hosts()}
    assert host.address != hosts.CHECK_ADDRESS


@pytest.mark.parametrize("number", [0, 254, 255, -1])
def test_a_host_number_outside_the_subnet_is_refused_in_one_line(number):
    with pytest.raises(ValueError, match=rf"^host number {number}: must be from 1 to 253$"):
        hosts.Host(number)


def test_without_ip_on_the_path_the_reason_says_so(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))  # an empty folder: no `ip`
    assert hosts.unavailable() == "the `ip` command (iproute2) is not installed"


@pytest.mark.skipif(shutil.which("ip") is None, reason="needs iproute2's ip")
def test_a_failing_ip_command_is_one_line_naming_it():
    with pytest.raises(hosts.HostsError) as failed:
        hosts.ip("link", "show", "airnub-mh-no-such-link")
    message = str(failed.value)
    assert message.startswith("ip link show airnub-mh-no-such-link: ") and "\n" not in message
