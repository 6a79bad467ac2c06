
import numpy as np
import pytest
import torch

from toyviz.engine.config import DataConfig
from toyviz.engine.data import grid_centers, load_points_csv, make_data, ring_centers


def test_ring_centres_do_not_repeat():
    c = ring_centers(8, 2.0)
    np.testing.assert_allclose(c[0], [2.0, 0.0], atol=1e-12)
    np.testing.assert_allclose(c[2], [0.0, 2.0], atol=1e-12)
    assert len({tuple(np.round(p, 6)) for p in c}) == 8


def test_grid_centres():
    c = grid_centers(5, 2.0)
    assert sorted(set(c[:, 0])) == [-4, -2, 0, 2, 4] and len(c) == 25


def test_sampling_is_seeded_and_matches_the_mixture():
    m = make_data(DataConfig(kind="ring", n_modes=8, radius=1.0, std=0.01))
    a = m.sample(4000, torch.Generator().manual_seed(3))
    b = m.sample(4000, torch.Generator().manual_seed(3))
    torch.testing.assert_close(a, b)
    d = torch.cdist(a, m.centers).min(1).values
    assert float((d < 0.05).float().mean()) > 0.999


def test_unequal_weights():
    m = make_data(DataConfig(kind="mixture", centers=[[0, 0], [5, 5]], stds=[0.1, 0.2], weights=[3, 1]))
    x, y = m.sample(20000, torch.Generator().manual_seed(0), return_labels=True)
    assert float((y == 0).float().mean()) == pytest.approx(0.75, abs=0.02)
    assert float(x[y == 1].std(0).mean()) == pytest.approx(0.2, rel=0.05)
    torch.testing.assert_close(m.weights, torch.tensor([0.75, 0.25]))


def test_point_cloud():
    pts = [[0.0, 1.0], [2.0, 3.0], [4.0, 5.0]]
    m = make_data(DataConfig(kind="points", points=pts))
    x = m.sample(50, torch.Generator().manual_seed(0))
    assert {tuple(p) for p in x.tolist()} <= {tuple(p) for p in pts}


def test_csv_reader():
    np.testing.assert_allclose(load_points_csv("x,y\n1,2\n3.5,-4\n"), [[1, 2], [3.5, -4]])
    for text, match in [("", "empty"), ("x,y\n", "no x,y rows"), ("1,2\n3\n", "row 2"),
                        ("1,2\na,b\n", "not numeric"), ("1,nan\n", "NaN")]:
        with pytest.raises(ValueError, match=match):
            load_points_csv(text)
    with pytest.raises(ValueError, match="at most 5"):
        load_points_csv("\n".join(["1,1"] * 6), max_points=5)


@pytest.mark.parametrize("text,match", [
    ("1,5;2,5\n", r"^CSV row 1: '1,5' is not numeric \(a decimal comma"),
    ("1,2\nx,3\n", r"^CSV row 2: 'x' is not numeric"),
    ("bad,1\n1,2\n", r"^CSV row 1: 'bad' is not numeric"),
    ("x,y\n1_0,2\n", r"^CSV row 2: '1_0' is not numeric \(underscores"),
    ("x,y,z\n1,2,3\n", r"^CSV row 2: expected two columns x,y, got 3 \(extra columns: '3'\)"),
    ("nan,1\n1,2\n", r"^CSV row 1: NaN"),
])
def test_csv_refuses_what_it_would_read_wrong(text, match):
    with pytest.raises(ValueError, match=match):
        load_points_csv(text)


def test_csv_header_is_a_first_row_without_numbers_and_semicolons_separate():
    np.testing.assert_allclose(load_points_csv("x1;y1\n1.5;-2\n"), [[1.5, -2]])
    np.testing.assert_allclose(load_points_csv("1,2\n3,4\n"), [[1, 2], [3, 4]])
