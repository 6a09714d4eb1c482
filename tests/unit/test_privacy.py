"""Pseudonymisation of personal ID numbers before anything is stored for analysts [信息资源共享机制 五]."""

from __future__ import annotations

from domain.privacy import is_personal_id, is_uscc, looks_personal, pseudonymise

KEY = b"test-key"


def test_a_valid_personal_id_becomes_a_stable_keyed_pseudonym() -> None:
    p = pseudonymise("330502199001011236", KEY)
    assert p.startswith("P-") and "330502" not in p
    assert pseudonymise("330502199001011236", KEY) == p
    assert pseudonymise("330502199001011236", b"other-key") != p


def test_an_organisation_code_passes_unchanged() -> None:
    assert pseudonymise("91330502MA2B3C4D5E", KEY) == "91330502MA2B3C4D5E"


def test_a_mistyped_or_old_personal_id_is_pseudonymised_all_the_same() -> None:
    assert looks_personal("330502199001011237")  # wrong check digit
    assert looks_personal("330502900101123")  # a 15-digit first-generation number
    assert pseudonymise("330502199001011237", KEY).startswith("P-")
    assert pseudonymise("330502900101123", KEY).startswith("P-")


def test_a_valid_all_digit_credit_code_is_not_mistaken_for_a_person() -> None:
    # all-digit 统一社会信用代码 that are valid as such and not valid ID numbers
    codes = [
        f"9133050200000{n:04d}" + c
        for n in range(200)
        for c in "0123456789"
        if is_uscc(f"9133050200000{n:04d}" + c) and not is_personal_id(f"9133050200000{n:04d}" + c)
    ]
    assert codes
    for code in codes:
        assert not looks_personal(code)
        assert pseudonymise(code, KEY) == code


def test_the_pseudonym_is_the_keyed_hash_of_the_id_and_full_width_digits_are_pseudonymised_too() -> None:
    import hashlib
    import hmac

    expected = "P-" + hmac.new(KEY, b"33050219900101123X", hashlib.sha256).hexdigest()[:32]
    assert pseudonymise("33050219900101123x", KEY) == expected  # the stored pseudonyms do not change
    full_width = "３３０５０２１９９００１０１１２３６"  # 330502199001011236 typed in full-width digits
    assert looks_personal(full_width)
    masked = pseudonymise(full_width, KEY)  # (encoding it as ASCII used to raise)
    assert masked.startswith("P-") and "３３０５" not in masked
