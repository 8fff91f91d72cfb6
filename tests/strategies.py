"""Hypothesis strategies shared by the sandbox's property tests."""

from __future__ import annotations

from hypothesis import strategies as st

_TWO = st.integers(0, 99).map(lambda n: f"{n:02d}")


@st.composite
def iso_like(draw: st.DrawFn) -> str:
    date = f"{draw(st.integers(0, 9999)):04d}-{draw(_TWO)}-{draw(_TWO)}"
    time = f"{draw(_TWO)}:{draw(_TWO)}"
    if draw(st.booleans()):
        time += ":" + draw(_TWO)
        if draw(st.booleans()):
            time += draw(st.sampled_from(".,")) + draw(
                st.text("0123456789", min_size=1, max_size=9)
            )
    offset = draw(
        st.one_of(
            st.just("Z"),
            st.builds(
                lambda s, h, m: f"{s}{h}{m}",
                st.sampled_from("+-"),
                _TWO,
                st.sampled_from(["", "00", ":00", ":30", "60", ":59"]),
            ),
        )
    )
    return f"{date}T{time}{offset}"


# Values of every JSON type, plus the ones that trip up a check by type: bool is an int to
# Python, "" means absent, 2**63 does not fit SQLite, a str subclass is not a plain str.
class _Text(str):
    pass


TRICKY = [0, 0.0, False, True, [], {}, [1], 1.5, 2**63, -(2**63) - 1, "", " ", _Text("x")]
ANY_VALUE = st.one_of(
    st.sampled_from(TRICKY),
    st.none(),
    st.integers(-(2**64), 2**64),
    st.text(max_size=12),
    iso_like(),
    st.sampled_from(["+12025559876", "+447911123456", "+1202555987", "+12025550100"]),
)
GOOD_SEND = {
    "id": st.text(min_size=1, max_size=8),
    "to_number": st.sampled_from(["+12025559876", "+447911123456"]),
    "timestamp": st.sampled_from(["2025-11-15T14:30:00Z", "2025-11-15T14:30:00.5+01:00"]),
    "list_number": st.sampled_from(["+12025550100", "", None]),
    "list_id": st.sampled_from([42, -1, 2**63 - 1, None, ""]),
    "message": st.text(max_size=10),
    "send_type": st.sampled_from(["campaign", "", None]),
    "delivered": st.sampled_from([True, False, None, ""]),
    "length": st.integers(0, 500),
    "creative_id": st.integers(-(2**63), 2**63 - 1),
}


@st.composite
def send_like(draw: st.DrawFn) -> object:
    """Mostly good send records with one field replaced by any value or left out."""
    if draw(st.integers(0, 20)) == 0:
        return draw(ANY_VALUE)  # not even a dict
    record = {name: draw(good) for name, good in GOOD_SEND.items() if draw(st.integers(0, 4))}
    if draw(st.integers(0, 4)):
        record[draw(st.sampled_from([*GOOD_SEND, "other"]))] = draw(ANY_VALUE)
    return record
