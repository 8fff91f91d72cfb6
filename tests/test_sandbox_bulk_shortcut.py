"""bulk.store_sends' shortcut for the common request answers and stores as judging each record.

The shortcut is taken only without injected faults, so a fault index no request reaches
turns it off without changing anything else: the reference run.
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from trackly_migrate.sandbox.bulk import Checked, store_sends
from trackly_migrate.sandbox.rules import Rejected, SendCandidate
from trackly_migrate.sandbox.seed import DEMO_API_KEY, default_seed
from trackly_migrate.sandbox.store import SendRow, Store

NO_RECORD_INDEX = frozenset({10**6})  # a save_error fault for a record no request holds

# Ids new and stored (the seed's), lists the account's (42, 43), nobody's (900) and none.
plain_rows = st.tuples(
    st.sampled_from(["n1", "n2", "n3", "imp_0001", "a1b2c3d4"]),
    st.sampled_from([None, 42, 43, 900]),
    st.sampled_from(["+12025559876", "+447911123456"]),
    st.just("2025-11-15T14:30:00.000000Z"),
    st.sampled_from([None, "Hi"]),
    st.just(None),
    st.sampled_from([None, True]),
    st.just(None),
    st.just(None),
)
others = st.sampled_from(
    [
        Rejected("invalid_phone", "Not E.164.", "r1"),
        SendCandidate(
            "c1",
            None,
            SendRow("c1", None, "+12025559876", "2025-11-15T14:30:00.000000Z", *[None] * 5),
            None,
            "+14155551234",
        ),
    ]
)
requests = st.lists(st.one_of(plain_rows, plain_rows, plain_rows, others), min_size=1, max_size=6)


def stored(store: Store) -> list[tuple[object, ...]]:
    with store.reading() as conn:
        return conn.execute("SELECT * FROM messages ORDER BY account_id, id").fetchall()


@settings(max_examples=300, deadline=None)
@given(requests)
def test_a_request_is_answered_and_stored_as_record_by_record(checked: list[Checked]) -> None:
    outcomes, tables = [], []
    for fail_at in (frozenset[int](), NO_RECORD_INDEX):
        store = Store(":memory:")
        store.open(default_seed())
        account = store.account_for_key(DEMO_API_KEY)
        assert account is not None
        with store.transaction() as tx:
            outcomes.append(store_sends(tx, account, list(checked), fail_at))
        tables.append(stored(store))
        store.close()
    assert outcomes[0] == outcomes[1]
    assert tables[0] == tables[1]
