"""Identity values as reconciliation compares them (plain functions, no database)."""

from __future__ import annotations

import pytest

from tikting.discovery import identity as I


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("AA-BB-CC-DD-EE-01", "aa:bb:cc:dd:ee:01"),
        ("aabb.ccdd.ee01", "aa:bb:cc:dd:ee:01"),
        ("aabbccddee01", "aa:bb:cc:dd:ee:01"),
        ("aa:bb:cc", ""),
        ("", ""),
    ],
)
def test_macs_have_one_spelling(given, expected):
    assert I.canonical_mac(given) == expected


@pytest.mark.parametrize(
    ("given", "virtual", "expected"),
    [
        ("00:1a:2b:3c:4d:5e", False, "00:1a:2b:3c:4d:5e"),
        ("00:1a:2b:3c:4d:5e", True, ""),  # the source says it is virtual
        ("02:42:ac:11:00:02", False, ""),  # locally administered (a container, a randomised phone)
        ("da:a1:19:00:00:01", False, ""),  # locally administered too (second bit of the first octet)
        ("01:00:5e:00:00:fb", False, ""),  # multicast
        ("00:00:00:00:00:00", False, ""),
        ("20:41:53:59:4e:ff", False, ""),  # Windows RAS
    ],
)
def test_only_real_interfaces_give_an_identity_mac(given, virtual, expected):
    assert I.identity_mac(given, virtual=virtual) == expected


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        (" cz1234 ", "CZ1234"),
        ("To Be Filled By O.E.M.", ""),
        ("System Serial Number", ""),
        ("0000000000", ""),
        ("123456789", ""),
        ("N/A", ""),
        ("XXXXXXXX", ""),
    ],
)
def test_placeholder_serials_are_no_serial(given, expected):
    assert I.serial_key(given) == expected


def test_uuids_are_lower_case_with_dashes_and_placeholders_are_none():
    assert I.uuid_key("4216A3B21C2D3E4F5A6B7C8D9E0F1A2B") == "4216a3b2-1c2d-3e4f-5a6b-7c8d9e0f1a2b"
    assert I.uuid_key("FFFFFFFF-FFFF-FFFF-FFFF-FFFFFFFFFFFF") == ""
    assert I.uuid_key("not-a-uuid") == ""


@pytest.mark.parametrize(
    ("hostname", "fqdn", "expected"),
    [
        ("WEB-01.Corp.Example.", "", ("web-01", "web-01.corp.example")),
        ("web-01", "web-01.corp.example", ("web-01", "web-01.corp.example")),
        ("", "db.corp.example", ("db", "db.corp.example")),
        ("localhost", "localhost.localdomain", ("", "")),
        ("192.0.2.4", "", ("", "")),
        ("printer", "printer", ("printer", "")),
    ],
)
def test_host_names_are_split_from_their_domain(hostname, fqdn, expected):
    assert I.hostname_and_fqdn(hostname, fqdn) == expected


def test_manufacturers_compare_by_their_first_word():
    assert I.manufacturer_key("Dell Inc.") == "dell"
    assert I.manufacturer_key("Hewlett-Packard") == "hp"
    assert I.manufacturer_key("To Be Filled By O.E.M.") == ""


def test_trusted_ranges():
    ranges = I.networks(["10.20.0.0/24", "2001:db8::/32"])
    assert I.trusted("10.20.0.9", ranges) and I.trusted("2001:db8::1", ranges)
    assert not I.trusted("10.21.0.9", ranges) and not I.trusted("", ranges)
    with pytest.raises(ValueError, match="'10.0.0/33' is not a network"):
        I.networks(["10.0.0/33"])


def test_the_primary_ip_skips_loopback_and_link_local():
    assert I.primary_ip(["127.0.0.1", "10.0.0.4"], []) == "10.0.0.4"
    assert I.primary_ip([], ["fe80::1", "2001:db8::5"]) == "2001:db8::5"
    assert I.primary_ip(["127.0.0.1"], []) == "127.0.0.1"
