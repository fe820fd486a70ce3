"""audit.plain: the JSON form of field values kept in history."""

import decimal

from tikting.core.audit import diff, plain


def test_decimals_compare_by_value_not_by_scale():
    assert plain(decimal.Decimal("3.2600")) == plain(decimal.Decimal("3.26")) == "3.26"
    assert plain(decimal.Decimal("100.0000")) == "100"  # not 1E+2
    assert plain(decimal.Decimal("0.00001")) == "0.00001"
    before = {"baseline_value": plain(decimal.Decimal("3.2600"))}
    assert diff(before, {"baseline_value": plain(decimal.Decimal("3.26"))}) == {}
