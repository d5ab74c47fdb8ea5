"""Reader and writer threads: same output as the main thread alone, errors raised in the caller, threads stopped."""

import threading

import numpy as np
import pytest
import rasterio
from raster_fakes import smooth, toy_checkpoint, write_raster

import segsr
from segsr.inference.execution.pipeline import BackgroundWriter, prefetched


def test_threads_write_the_same_file_as_the_main_thread(tmp_path):
    upscaler = segsr.load(toy_checkpoint(tmp_path / 'toy.pth'))
    data = np.rint(3000 * np.stack([smooth(48, 40, band) for band in range(3)])).astype(np.uint16)
    data[:, 10:20, 5:15] = 0
    source = write_raster(tmp_path / 'scene.tif', data, nodata=0)
    files = [upscaler.upscale_file(source, tmp_path / f'{threads}.tif', tile=16, overlap=4, batch=2,
                                   io_threads=threads)[0] for threads in (True, False)]
    with rasterio.open(files[0]) as threaded, rasterio.open(files[1]) as inline:
        np.testing.assert_array_equal(threaded.read(), inline.read())
        np.testing.assert_array_equal(threaded.dataset_mask(), inline.dataset_mask())


def test_prefetched_keeps_order_and_raises_the_reader_error():
    assert list(prefetched(iter(range(20)), depth=2)) == list(range(20))

    def failing():
        yield 1
        raise OSError('block 2 is corrupt')

    with pytest.raises(OSError, match='corrupt'):
        list(prefetched(failing()))


def test_prefetched_stops_its_reader_when_the_consumer_leaves():
    produced = []

    def endless():
        while True:
            produced.append(1)
            yield len(produced)

    items = prefetched(endless(), depth=2)
    assert next(items) == 1
    items.close()
    assert not any(thread.name == 'segsr-reader' for thread in threading.enumerate())


def test_background_writer_runs_jobs_in_order_and_raises_their_error():
    done = []
    writer = BackgroundWriter(depth=2)
    for index in range(10):
        writer.submit(lambda index=index: done.append(index))
    writer.finish()
    assert done == list(range(10))

    writer = BackgroundWriter(depth=2)
    writer.submit(lambda: (_ for _ in ()).throw(OSError('disk full')))
    with pytest.raises(OSError, match='disk full'):
        for _ in range(100):
            writer.submit(lambda: None)
        writer.finish()
    writer.cancel()
