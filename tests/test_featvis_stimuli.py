"""Texture concepts (mechinterp.featvis.stimuli: grating, random_gratings, uniform_noise), checked
with numpy's FFT: a grating's power sits at the frequency and orientation it was drawn with."""
import math

import numpy as np
import pytest

from mechinterp.featvis.stimuli import grating, random_gratings, uniform_noise


def peak_frequency(image):
    """(cycles along y, cycles along x) of the strongest non-constant Fourier component."""
    power = np.abs(np.fft.fft2(image - image.mean())) ** 2
    y, x = np.unravel_index(np.argmax(power), power.shape)
    size_y, size_x = image.shape
    return (y if y <= size_y // 2 else y - size_y), (x if x <= size_x // 2 else x - size_x)


@pytest.mark.parametrize("cycles_y, cycles_x", [(0, 4), (4, 0), (4, 3), (5, -2)])
def test_a_grating_is_one_fourier_component_where_it_was_drawn(cycles_y, cycles_x):
    size = 32
    period = size / math.hypot(cycles_x, cycles_y)
    image = grating(size, math.atan2(cycles_y, cycles_x), period, phase=0.3).numpy()
    found = peak_frequency(image)
    assert found in {(cycles_y, cycles_x), (-cycles_y, -cycles_x)}
    power = np.abs(np.fft.fft2(image - image.mean())) ** 2
    assert 2 * power.max() / power.sum() > 0.99        # the component and its conjugate: all of it
    assert image.min() >= -1 - 1e-6 and image.max() <= 1 + 1e-6


def test_random_gratings_stay_in_range_with_periods_drawn_from_the_interval():
    images = random_gratings(20, np.random.default_rng(0), shape=(3, 32, 32), periods=(4.0, 10.0))
    assert images.shape == (20, 3, 32, 32)
    assert float(images.min()) >= 0.0 and float(images.max()) <= 1.0
    for image in images.numpy():
        cycles = math.hypot(*peak_frequency(image[0]))
        assert 32 / 10 - 1 <= cycles <= 32 / 4 + 1       # period in [4, 10] px, up to one FFT bin
    again = random_gratings(20, np.random.default_rng(0), shape=(3, 32, 32))
    assert bool((again == images).all())                 # the caller's generator decides them


def test_uniform_noise_is_uniform_on_the_unit_interval():
    noise = uniform_noise(50, np.random.default_rng(1), shape=(1, 16, 16)).numpy()
    assert noise.shape == (50, 1, 16, 16) and noise.min() >= 0 and noise.max() < 1
    counts, _ = np.histogram(noise, bins=10, range=(0, 1))
    assert counts.min() > 0.9 * noise.size / 10          # 12,800 values: within 10% of flat per bin
