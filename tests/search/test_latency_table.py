import json
import os
import re
import warnings

import pytest
from torch import nn

from leanconv.search.candidates import search_layers
from leanconv.search.latency_table import (
    cache_key,
    cache_path,
    measure_table,
    read_cache,
    signature,
)

SHAPE = (2, 3, 16, 16)


def net():
    return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
                         nn.Conv2d(8, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(),
                         nn.Conv2d(16, 16, 1), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                         nn.Linear(16, 4)).eval()


def table(model, **kwargs):
    layers = search_layers(model, SHAPE, kxk=("keep", "dwsep", "hetconv:p=2"),
                           pointwise=("keep", "group:g=2,shuffle=1"))
    return layers, measure_table(model, layers, SHAPE, threads=1, rounds=2,
                                 min_run_time=0.002, **kwargs)


def test_every_entry_is_measured_then_reused_from_the_cache(tmp_path):
    model = net()
    _, first = table(model, cache_dir=tmp_path)
    assert (first.measured, first.reused) == (5, 0)
    assert set(first.ms) == {"3", "6"} and set(first.ms["3"]) == {"keep", "dwsep", "hetconv:p=2"}
    assert all(ms > 0 for row in first.ms.values() for ms in row.values())
    _, second = table(model, cache_dir=tmp_path)
    assert (second.measured, second.reused) == (0, 5)
    assert second.ms == first.ms
    assert "5 reused from the cache" in second.describe()
    _, fresh = table(model, cache_dir=tmp_path, use_cache=False)
    assert (fresh.measured, fresh.reused, fresh.cache) == (5, 0, None)


def test_the_default_cache_is_under_xdg_cache_home():
    _, result = table(net())
    assert result.cache.startswith(os.environ["XDG_CACHE_HOME"] + "/leanconv/latency/")
    payload = json.loads(open(result.cache).read())
    assert payload["key"] == cache_key(SHAPE[0], 1, False)
    assert len(payload["entries"]) == 5


def test_the_key_separates_machines_settings_and_layers():
    keys = [cache_key(1, 1, False), cache_key(2, 1, False), cache_key(1, 2, False),
            cache_key(1, 1, True)]
    assert len({cache_path(key) for key in keys}) == 4
    assert {"cpu", "cores", "torch", "threads", "batch", "memory_format"} <= set(keys[0])
    conv = nn.Conv2d(8, 16, 3, padding=1)
    assert signature(conv, (1, 8, 16, 16), "dwsep") != signature(conv, (1, 8, 32, 32), "dwsep")
    assert signature(conv, (1, 8, 16, 16), "dwsep") != signature(
        nn.Conv2d(8, 16, 3, 2, 1), (1, 8, 16, 16), "dwsep")


def test_a_corrupt_or_foreign_cache_file_is_measured_again(tmp_path):
    model = net()
    _, first = table(model, cache_dir=tmp_path)
    with open(first.cache, "w") as file:
        file.write("{not json")
    with pytest.warns(UserWarning, match=re.escape(f"latency cache '{first.cache}' is corrupt")):
        _, again = table(model, cache_dir=tmp_path)
    assert again.measured == 5
    payload = json.loads(open(first.cache).read())
    payload["key"]["torch"] = "0.0"
    with open(first.cache, "w") as file:
        json.dump(payload, file)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # another machine's or setting's file is no damage
        _, foreign = table(model, cache_dir=tmp_path)
    assert foreign.measured == 5


def test_prediction_adds_the_chosen_entries_to_the_measured_rest(tmp_path):
    _, result = table(net(), cache_dir=tmp_path)
    assert result.predict({}) == pytest.approx(result.total_ms)
    plan = {"3": "dwsep", "6": "group:g=2,shuffle=1"}
    expected = result.rest_ms + result.ms["3"]["dwsep"] + result.ms["6"]["group:g=2,shuffle=1"]
    assert result.predict(plan) == pytest.approx(expected)
    assert result.predict_macs(plan) < result.total_macs
    assert result.macs["3"]["keep"] == 8 * 16 * 9 * 16 * 16 * 2


def test_channels_last_tables_have_their_own_cache_file(tmp_path):
    _, contiguous = table(net(), cache_dir=tmp_path)
    _, channels_last = table(net(), cache_dir=tmp_path, channels_last=True)
    assert channels_last.key["memory_format"] == "channels_last"
    assert channels_last.measured == 5 and channels_last.cache != contiguous.cache


def test_layers_of_one_signature_are_timed_once(tmp_path):
    model = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.Conv2d(8, 8, 3, padding=1),
                          nn.Conv2d(8, 8, 3, padding=1), nn.AdaptiveAvgPool2d(1),
                          nn.Flatten(), nn.Linear(8, 2)).eval()
    _, result = table(model, cache_dir=tmp_path)
    assert result.entries == 6 and (result.measured, result.reused) == (3, 0)
    assert result.ms["1"] == result.ms["2"]
    assert "3 measured (layers of one signature share one)" in result.describe()


def test_a_truncated_cache_file_is_reported_by_name_a_missing_one_is_not(tmp_path):
    key = cache_key(1, 1, False)
    path = cache_path(key, tmp_path)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert read_cache(path, key) == {}  # no file yet: silent
    whole = json.dumps({"key": key, "entries": {"dwsep|conv(8, 16)|in(1, 8, 16, 16)": 0.25}})
    path.write_text(whole)
    assert read_cache(path, key) == {"dwsep|conv(8, 16)|in(1, 8, 16, 16)": 0.25}
    path.write_text(whole[: len(whole) // 2])  # cut off
    with pytest.warns(UserWarning) as caught:
        assert read_cache(path, key) == {}
    message = str(caught[0].message)
    assert message.startswith(f"latency cache {str(path)!r} is corrupt (JSONDecodeError: ")
    assert message.endswith("; measuring its entries again and rewriting it")
    assert "\n" not in message
    for broken, reason in [([1, 2], "it holds no key"),
                           ({"key": key, "entries": [0.25]}, "its entries are list")]:
        path.write_text(json.dumps(broken))
        with pytest.warns(UserWarning, match=re.escape(f"is corrupt ({reason}")):
            assert read_cache(path, key) == {}
