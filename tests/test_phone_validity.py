"""``normalize.is_valid_number`` answers as ``phonenumbers.is_valid_number`` does."""

from __future__ import annotations

import phonenumbers
from hypothesis import given, settings
from hypothesis import strategies as st

from trackly_migrate.normalize import is_valid_number

# Calling codes shared by several regions: the only ones with a path of their own.
SHARED = sorted(
    code for code, regions in phonenumbers.COUNTRY_CODE_TO_REGION_CODE.items() if len(regions) > 1
)


def _number(country: int, national: str) -> phonenumbers.PhoneNumber:
    return phonenumbers.PhoneNumber(country_code=country, national_number=int(national))


def test_the_shared_calling_codes_are_there_to_test() -> None:
    assert 1 in SHARED and 44 in SHARED and 7 in SHARED


def test_every_region_s_example_numbers_get_phonenumbers_answer() -> None:
    for code in SHARED:
        for region in phonenumbers.COUNTRY_CODE_TO_REGION_CODE[code]:
            for kind in (
                phonenumbers.PhoneNumberType.FIXED_LINE,
                phonenumbers.PhoneNumberType.MOBILE,
            ):
                example = phonenumbers.example_number_for_type(region, kind)
                if example is None:
                    continue
                national = str(example.national_number)
                for digits in (national, national[:-1], national + "5", "9" + national[1:]):
                    if not digits:
                        continue
                    number = _number(code, digits)
                    assert is_valid_number(number) == phonenumbers.is_valid_number(number), (
                        region,
                        digits,
                    )


@settings(max_examples=500)
@given(
    st.one_of(st.sampled_from(SHARED), st.sampled_from([33, 49, 61, 86, 262, 599, 999])),
    st.from_regex(r"[1-9][0-9]{3,13}", fullmatch=True),
)
def test_any_number_gets_phonenumbers_answer(country: int, national: str) -> None:
    number = _number(country, national)
    assert is_valid_number(number) == phonenumbers.is_valid_number(number)
