import math

import pytest

from avssl.utils.schedules import warmup_cosine


def test_warmup_is_linear_then_cosine_to_zero():
    total, warm = 100, 10
    factors = [warmup_cosine(s, total, warm) for s in range(total + 1)]
    assert factors[:10] == pytest.approx([(s + 1) / 10 for s in range(10)])
    assert factors[10] == pytest.approx(1.0)
    assert factors[55] == pytest.approx(0.5 * (1 + math.cos(math.pi * 0.5)))
    assert factors[100] == pytest.approx(0.0, abs=1e-12)
    assert all(a >= b for a, b in zip(factors[10:], factors[11:]))


def test_no_warmup():
    assert warmup_cosine(0, 10, 0) == pytest.approx(1.0)
