import pytest
import torch
from harbench_duet.augment import add_virtual_devices, random_transform
from harbench_duet.episodes import build_devices, device_buffer, split_by_user

from harbench import Windows

pytestmark = pytest.mark.kernel  # trains models: `make test` runs it again under other torch SIMD kernels


def population() -> Windows:
    """3 users x 2 contexts x 2 recordings of 10 windows, stride 64, window 128 (windows overlap by half)."""
    parts = []
    rec = 0
    for u in range(3):
        for c in range(2):
            for a in range(2):
                n = 10
                parts.append(Windows(torch.randn(n, 6, 128), torch.full((n,), a), torch.full((n,), rec),
                                     torch.arange(n) * 64, torch.full((n,), u), torch.full((n,), c)))
                rec += 1
    return Windows.concat(parts)


def test_buffer_and_query_pools_never_share_a_sample():
    pop = population()
    devices = build_devices(pop)
    assert len(devices) == 6
    for d in devices:
        assert set(pop.user[torch.cat([d.buffer_pool, d.query_pool])].tolist()) == {d.user}
        for rec in torch.unique(pop.recording[d.buffer_pool]).tolist():
            b = d.buffer_pool[pop.recording[d.buffer_pool] == rec]
            q = d.query_pool[pop.recording[d.query_pool] == rec]
            assert int(pop.start[b].max()) + 128 <= int(pop.start[q].min())  # no overlapping samples


def test_validation_users_are_whole_population_users():
    split = split_by_user(build_devices(population()), 0.34, torch.Generator().manual_seed(0))
    assert len(split.val_users) == 1
    assert {d.user for d in split.val} == set(split.val_users)
    assert not {d.user for d in split.train} & set(split.val_users)


def test_device_buffer_selection():
    assert device_buffer(40, 4, "recent").tolist() == [36, 37, 38, 39]
    assert device_buffer(40, 4, "spread").tolist() == [0, 13, 26, 39]
    assert device_buffer(3, 8, "spread").tolist() == [0, 1, 2]


def test_virtual_devices_transform_a_copy_and_keep_their_user():
    pop = population()
    devices = build_devices(pop)
    extended, virtual = add_virtual_devices(pop, devices, 2, torch.Generator().manual_seed(0))
    assert len(virtual) == 2 * len(devices)
    assert len(extended) == len(pop) + sum(len(d.buffer_pool) + len(d.query_pool) for d in virtual)
    assert torch.equal(extended.x[: len(pop)], pop.x)
    v, d = virtual[0], devices[0]
    assert v.user == d.user and len(v.buffer_pool) == len(d.buffer_pool)
    assert not torch.allclose(extended.x[v.buffer_pool], pop.x[d.buffer_pool])


def test_zero_strength_transform_is_the_identity():
    x = torch.randn(4, 6, 128)
    assert torch.allclose(random_transform(6, torch.Generator().manual_seed(1), strength=0.0)(x), x, atol=1e-5)


def test_training_buffers_are_recent_windows_of_a_session_shuffled_stream():
    from harbench_duet.episodes import draw_buffer

    pop = population()
    device = build_devices(pop)[0]
    assert len(device.sessions()) == 2  # two recordings (activities) per device
    rng = torch.Generator().manual_seed(0)
    seen_last = set()
    for _ in range(20):
        buf = draw_buffer(device, 6, "recent", rng)
        recs = pop.recording[buf].tolist()
        # contiguous tail of a stream of whole sessions: at most two sessions, each block in time order
        assert len(set(recs)) <= 2 and recs == sorted(recs, key=recs.index)
        for r in set(recs):
            starts = pop.start[buf][pop.recording[buf] == r]
            assert torch.equal(starts, torch.sort(starts).values)
        seen_last.add(recs[-1])
    assert len(seen_last) == 2  # the session order is random, not fixed


def test_spread_training_buffers_cover_every_session():
    from harbench_duet.episodes import draw_buffer

    pop = population()
    device = build_devices(pop)[0]
    buf = draw_buffer(device, 6, "spread", torch.Generator().manual_seed(0))
    assert set(pop.recording[buf].tolist()) == set(pop.recording[device.buffer_pool].tolist())
