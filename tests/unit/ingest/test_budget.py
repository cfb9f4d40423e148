"""The byte budget shared by TCP ingest connections: fit, order, oversize, cancellation."""

from __future__ import annotations

import asyncio

from eventstream.server.ingest.budget import ByteBudget


async def test_takes_what_fits_and_waits_for_the_rest_in_arrival_order():
    budget = ByteBudget(100)
    assert budget.try_take(60)
    assert not budget.try_take(50)
    granted: list[str] = []

    async def take(name: str, count: int) -> None:
        await budget.take(count)
        granted.append(name)

    large = asyncio.create_task(take("large", 90))
    await asyncio.sleep(0)
    small = asyncio.create_task(take("small", 10))
    await asyncio.sleep(0)
    assert granted == [] and not budget.try_take(10), "a waiter is ahead: nobody overtakes it"
    budget.give(60)
    await asyncio.gather(large, small)
    assert granted == ["large", "small"] and budget.used == 100


async def test_a_request_larger_than_the_budget_is_granted_alone():
    budget = ByteBudget(100)
    assert budget.try_take(1)
    oversize = asyncio.create_task(budget.take(500))
    await asyncio.sleep(0)
    assert not oversize.done()
    budget.give(1)
    await oversize
    assert budget.used == 500
    budget.give(500)
    assert budget.used == 0 and budget.try_take(100)


async def test_a_cancelled_waiter_leaves_nothing_taken_and_lets_the_next_one_in():
    budget = ByteBudget(100)
    assert budget.try_take(80)
    first = asyncio.create_task(budget.take(50))
    second = asyncio.create_task(budget.take(20))
    await asyncio.sleep(0)
    assert not second.done(), "second waits behind first"
    first.cancel()
    await asyncio.gather(first, return_exceptions=True)
    await second
    assert budget.used == 100
