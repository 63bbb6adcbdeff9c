"""Who counts as one client: an IPv4 address, an IPv6 /64 (one host picks any address in
its /64), but link-local IPv6 addresses one by one, since every host on the link has one
in the same fe80::/64 and grouping them made all those clients one person."""

from __future__ import annotations

from gambiarra_desktop.accounting.caller import Caller, address_subject
from gambiarra_desktop.hub.failure_book import FailureBook, client_key


def test_link_local_clients_are_separate_people_and_global_ones_share_their_64() -> None:
    for identity in (address_subject, client_key):
        assert identity("fe80::1") != identity("fe80::2")
        assert identity("fe80::1") == identity("fe80::1%eth0")  # The zone is not the host.
        assert identity("fe80::a:b:c:d") == "fe80::a:b:c:d"
        assert identity("2001:db8:1:2::1") == identity("2001:db8:1:2:aaaa::9")
        assert identity("2001:db8:1:2::1") == "2001:db8:1:2::/64"
        assert identity("::ffff:10.0.0.7") == identity("10.0.0.7") == "10.0.0.7"
    assert Caller("fe80::1").person != Caller("fe80::2").person
    assert Caller("2001:db8::1").person == Caller("2001:db8::2").person


def test_one_link_local_clients_failures_do_not_lock_out_its_neighbours() -> None:
    book = FailureBook(max_failures=3, window_s=60.0)
    for _ in range(3):
        book.record(client_key("fe80::1"))
    assert book.is_locked(client_key("fe80::1"))
    assert book.is_locked(client_key("fe80::1%eth0"))
    assert not book.is_locked(client_key("fe80::2"))
