"""Room codes: the right alphabet and length, unique, and matched case-insensitively."""

from __future__ import annotations

from collections import Counter

import pytest

from gambiarra_desktop.hub.rooms.identifiers import (
    new_room_code,
    new_room_id,
    normalize_code,
)
from gambiarra_desktop.protocol import ROOM_CODE_ALPHABET, ROOM_CODE_LENGTH


def test_alphabet_has_no_look_alikes() -> None:
    for confusable in "0O1I":
        assert confusable not in ROOM_CODE_ALPHABET


def test_codes_use_only_the_alphabet_and_spread_over_it() -> None:
    # Made as a hub makes them, each avoiding the codes in use: they never repeat. (Made
    # independently, 2,000 codes out of 32**6 share one about once in 500 runs, which this
    # test used to assert could not happen.)
    taken: set[str] = set()
    codes = []
    for _ in range(2000):
        codes.append(new_room_code(taken))
        taken.add(codes[-1])
    assert all(len(code) == ROOM_CODE_LENGTH for code in codes)
    assert len(set(codes)) == len(codes)
    letters = Counter("".join(codes))
    assert set(letters) == set(ROOM_CODE_ALPHABET)
    # 12,000 letters over 32: 375 each expected, standard deviation about 19.
    assert all(250 < count < 500 for count in letters.values()), letters


def test_new_code_avoids_taken_codes() -> None:
    class EverythingTakenButOne:
        def __init__(self) -> None:
            self.asked = 0

        def __contains__(self, code: object) -> bool:
            self.asked += 1
            return self.asked < 5

    taken = EverythingTakenButOne()
    new_room_code(taken)
    assert taken.asked == 5


def test_new_code_gives_up_when_all_are_taken() -> None:
    class AllTaken:
        def __contains__(self, code: object) -> bool:
            return True

    with pytest.raises(RuntimeError):
        new_room_code(AllTaken())


def test_codes_normalize_to_upper_case() -> None:
    assert normalize_code(" abc2de ") == "ABC2DE"


def test_room_ids_are_21_url_safe_characters() -> None:
    ids = {new_room_id() for _ in range(100)}
    assert len(ids) == 100
    assert all(len(i) == 21 and i.replace("_", "").replace("-", "").isalnum() for i in ids)
