"""Parameterisations: each stage inverts exactly, so a given image can be the starting point."""
import numpy as np
import pytest
import torch

from mechinterp.featvis.parameterisations import (ColourDecorrelation, ImageParameterisation,
                                                  estimate_colour_correlation_sqrt, spectrum_scale)


@pytest.mark.parametrize("shape", [(2, 3, 32, 32), (3, 1, 17, 23), (1, 3, 15, 16)])
@pytest.mark.parametrize("fourier", [True, False])
def test_inverse_reproduces_a_given_image(shape, fourier):
    images = torch.rand(shape, generator=torch.Generator().manual_seed(0)) * 0.9 + 0.05
    image = ImageParameterisation.from_images(images, fourier=fourier, decorrelate=True)
    assert torch.allclose(image(), images, atol=1e-5)


def test_fourier_image_is_the_inverse_fft_of_the_scaled_spectrum():
    """Independent reference: numpy's inverse real FFT of the 1/f-scaled spectrum."""
    image = ImageParameterisation((1, 1, 12, 9), fourier=True, squash="clip", sd=0.3, seeds=[4])
    spectrum = image.spatial.spectrum.detach().numpy()[0, 0]
    complex_spectrum = (spectrum[..., 0] + 1j * spectrum[..., 1]) * spectrum_scale(12, 9).numpy()
    reference = np.fft.irfft2(complex_spectrum, s=(12, 9), norm="ortho") / 4.0
    assert np.allclose(image.spatial().detach().numpy()[0, 0], reference, atol=1e-6)


def test_fourier_scaling_gives_low_frequencies_the_largest_weight():
    scale = spectrum_scale(32, 32)
    assert scale[0, 0] == scale.max() == 32.0
    assert scale[16, 16] < scale[1, 1] < scale[0, 1]


def test_image_i_depends_only_on_its_own_seed():
    batch = ImageParameterisation((4, 3, 16, 16), seeds=[5, 6, 7, 8])()
    single = ImageParameterisation((1, 3, 16, 16), seeds=[7])()
    assert torch.equal(batch[2], single[0])
    assert not torch.allclose(batch[0], batch[1])


def test_colour_decorrelation_round_trip_and_estimated_correlation():
    generator = torch.Generator().manual_seed(1)
    mixing = torch.tensor([[1.0, 0.2, 0.0], [0.9, 0.5, 0.1], [0.8, 0.1, 0.6]])
    images = torch.einsum("ij,njhw->nihw", mixing, torch.rand(20, 3, 8, 8, generator=generator))
    root = estimate_colour_correlation_sqrt(images)
    pixels = images.permute(1, 0, 2, 3).reshape(3, -1).double().numpy()
    assert np.allclose((root @ root.T).numpy(), np.cov(pixels), atol=1e-5)
    colour = ColourDecorrelation(root)
    assert torch.allclose(colour.from_rgb(colour.to_rgb(images)), images, atol=1e-4)


def test_grey_images_skip_colour_decorrelation():
    image = ImageParameterisation((2, 1, 8, 8), decorrelate=True)
    assert image.colour is None and image().shape == (2, 1, 8, 8)


def test_a_grey_models_default_data_decorrelated_image_just_works():
    """What a featvis figure does (colours decorrelated with the data's own covariance) on grey data:
    a (1, 1) root, and decorrelation a no-op, so the render runs with the default settings."""
    from mechinterp.featvis import objectives as obj
    from mechinterp.featvis.render import render
    from tests.grey_cnn import grey_nested_cnn
    grey = torch.rand(30, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    root = estimate_colour_correlation_sqrt(grey)
    assert root.shape == (1, 1) and torch.allclose(root[0, 0] ** 2, grey.var().float(), rtol=1e-3)
    image = ImageParameterisation((2, 1, 8, 8), decorrelate=True, colour_correlation_sqrt=root, seeds=[0, 1])
    result = render(grey_nested_cnn(), obj.channel("features.4", [0, 1]), steps=3, image=image, progress=False)
    assert result.images.shape == (2, 1, 8, 8)


def test_a_colour_matrix_of_other_channels_than_the_image_is_a_clear_error():
    with pytest.raises(ValueError, match=r"colour_correlation_sqrt has shape \(3, 3\) but the images have 4 channels"):
        ImageParameterisation((1, 4, 8, 8), colour_correlation_sqrt=torch.eye(3))


def test_a_start_image_of_other_channels_than_the_model_is_one_error_naming_both():
    from mechinterp.featvis import objectives as obj
    from mechinterp.featvis.render import render
    from tests.grey_cnn import grey_nested_cnn
    with pytest.raises(ValueError, match=r"shape \(1, 3, 8, 8\), 3 channels, but the model takes 1-channel"):
        render(grey_nested_cnn(), obj.channel("features.4", 0), steps=1, progress=False,
               image=ImageParameterisation((1, 3, 8, 8)))


def test_mix_channels_is_the_per_pixel_matrix_product():
    from mechinterp.featvis.parameterisations import mix_channels
    generator = torch.Generator().manual_seed(0)
    matrix, images = torch.randn(3, 3, generator=generator), torch.randn(4, 3, 5, 7, generator=generator)
    expected = torch.einsum("ij,bjhw->bihw", matrix.double(), images.double())
    mixed = mix_channels(matrix, images)
    assert mixed.is_contiguous() and torch.allclose(mixed.double(), expected, atol=1e-5)
    assert mix_channels(torch.randn(1, 3, generator=generator), images).shape == (4, 1, 5, 7)
