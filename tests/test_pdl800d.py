"""PicoQuant PDL 800-D: the internal repetition rate is one of the driver's real internal rates."""

from __future__ import annotations

import pytest

from drivers.picoquant_pdl800d import PDL800D, PDL800D_UNVERIFIED


@pytest.fixture
def laser():
    instrument = PDL800D("pdl_internal")
    yield instrument
    instrument.close()


def test_internal_rate_default_is_one_of_the_internal_rates(laser):
    rates = PDL800D_UNVERIFIED["internal_rates_hz"]
    assert laser.internal_rate_hz() in rates
    assert laser.trigger_source() == "internal"
    assert laser.repetition_rate_hz() == laser.internal_rate_hz()


@pytest.mark.parametrize("rate_hz", [80e6, 40e6, 20e6, 10e6, 5e6, 10_000_000])
def test_internal_rate_accepts_each_internal_rate(laser, rate_hz):
    laser.internal_rate_hz(rate_hz)
    assert laser.repetition_rate_hz() == float(rate_hz)


@pytest.mark.parametrize("rate_hz", [1e6, 30e6, 80e6 + 1, 0.0])
def test_internal_rate_outside_the_table_is_refused_naming_value_and_allowed_rates(laser, rate_hz):
    before = laser.internal_rate_hz()
    with pytest.raises(ValueError) as info:
        laser.internal_rate_hz(rate_hz)
    message = str(info.value)
    assert f"{rate_hz!r} Hz" in message
    assert "allowed: 5e+06, 1e+07, 2e+07, 4e+07, 8e+07 Hz" in message
    assert "pdl_internal.internal_rate_hz" in message
    assert laser.internal_rate_hz() == before
