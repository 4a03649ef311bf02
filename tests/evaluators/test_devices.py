"""Devices: the local one in a child process, remote boards, pools, and how they fail."""

import os
import socket
import threading

import pytest

from evaluators.devices import DeviceBusy, DeviceError, DevicePool, LocalDevice, RemoteDevice, open_devices
from tests.evaluators.latency_helpers import QUICK, TOKEN, running_agent, unet_bytes, wait_until_busy

pytestmark = pytest.mark.timeout(300)


def test_local_device_measures_in_a_pinned_child_process():
    device = LocalDevice(threads=8, cpus=[0])
    result = device.measure(unet_bytes(), QUICK)
    assert result["device"] == "local[cpus=0]"
    assert result["threads"] == 1  # capped at the one CPU it may use
    assert result["median_ms"] > 0 and result["delegate"]["inside"]["CONV_2D"] == 15
    assert device.info()["cores"] == os.cpu_count()


def test_local_device_rejects_a_bad_model_with_a_value_error():
    with pytest.raises(ValueError, match="LiteRT cannot load it"):
        LocalDevice().measure(b"garbage", QUICK)


def test_local_and_agent_medians_agree():
    model, protocol = unet_bytes(64), {**QUICK, "warmup": 5, "runs": 30, "min_seconds": 0.5}
    with running_agent() as (url, _):
        remote = RemoteDevice(url, TOKEN)
        for _ in range(3):  # a busy shared machine may disturb one pair of measurements
            local_median = LocalDevice().measure(model, protocol)["median_ms"]
            remote_median = remote.measure(model, protocol)["median_ms"]
            if abs(local_median - remote_median) <= 0.25 * min(local_median, remote_median):
                break
    assert remote_median == pytest.approx(local_median, rel=0.25)


class CountingBoard(RemoteDevice):
    """A RemoteDevice that notes every 409 (DeviceBusy) it raises to the pool."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.busy = []

    def measure(self, model_bytes, protocol=None):
        try:
            return super().measure(model_bytes, protocol)
        except DeviceBusy as error:
            self.busy.append(str(error))
            raise


def test_busy_board_is_retried_until_it_is_free():
    with running_agent() as (url, _):
        # another host holds the board for a few seconds: this host's pool gets 409 until it is free
        other = threading.Thread(target=lambda: RemoteDevice(url, TOKEN).measure(unet_bytes(), {**QUICK, "runs": 1, "min_seconds": 3}))
        other.start()
        wait_until_busy(url)
        board = CountingBoard(url, TOKEN)
        result = DevicePool([board], rounds=8, backoff=0.2).measure(unet_bytes(), QUICK)
        other.join()
    assert board.busy and all("busy" in message for message in board.busy)  # a 409 was answered...
    assert result["median_ms"] > 0 and result["device"] == url  # ...and retried until the board measured


def test_busy_board_fails_after_the_last_round_with_its_reason():
    with running_agent() as (url, _):
        other = threading.Thread(target=lambda: RemoteDevice(url, TOKEN).measure(unet_bytes(), {**QUICK, "runs": 1, "min_seconds": 3}))
        other.start()
        wait_until_busy(url)
        with pytest.raises(DeviceError, match=f"after 2 tries: {url}: busy"):
            DevicePool([RemoteDevice(url, TOKEN)], rounds=2, backoff=0.05).measure(unet_bytes(), QUICK)
        other.join()


def test_pool_spreads_parallel_measurements_over_free_boards():
    with running_agent() as (first, _), running_agent() as (second, _):
        pool = DevicePool([RemoteDevice(first, TOKEN), RemoteDevice(second, TOKEN)], rounds=2, backoff=0.1)
        results = []
        threads = [threading.Thread(target=lambda: results.append(pool.measure(unet_bytes(), {**QUICK, "min_seconds": 0.5})))
                   for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert sorted(result["device"] for result in results) == sorted([first, second])


def test_unreachable_board_fails_with_its_name():
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{probe.getsockname()[1]}"
    with pytest.raises(DeviceError, match=f"{url}: unreachable \\(connection refused"):
        DevicePool([RemoteDevice(url, TOKEN)], rounds=2, backoff=0.05).measure(unet_bytes(), QUICK)


def test_wrong_token_is_not_retried():
    with running_agent() as (url, _):
        with pytest.raises(DeviceError, match="token refused"):
            DevicePool([RemoteDevice(url, "wrong")], rounds=5, backoff=10).measure(unet_bytes(), QUICK)


def test_open_devices(monkeypatch):
    assert isinstance(open_devices([], None, threads=2), LocalDevice)
    monkeypatch.setenv("NAS_LITE_DEVICE_TOKEN", "from-env")
    pool = open_devices(["http://pi-a.local:8765", "http://pi-b.local:8765/"])
    assert [device.name for device in pool.devices] == ["http://pi-a.local:8765", "http://pi-b.local:8765"]
    assert all(device.token == "from-env" for device in pool.devices)
    assert open_devices(["http://pi.local:8765"], "given").devices[0].token == "given"
    for bad in ["raspberrypi.local:8765", "ftp://pi.local", "http://", "http://pi.local:port"]:
        with pytest.raises(ValueError, match="is not a URL like http://raspberrypi.local:8765"):
            open_devices([bad])
    with pytest.raises(ValueError, match="cpus"):
        LocalDevice(cpus=[10_000])
