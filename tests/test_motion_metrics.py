import pytest

from conftest import moving_square
from eval.errors import MetricUndefined
from eval.metrics import Sample
from eval.metrics.motion import MotionMetric


@pytest.fixture(scope="module")
def metric():
    return MotionMetric()


def test_identical_motion_is_perfect(metric):
    ref = moving_square(vx=3, vy=1)
    values, details = metric.score(Sample(ref, "", ref))
    assert values == pytest.approx({"motion_direction_cos": 1.0, "motion_epe": 0.0, "motion_trajectory_cos": 1.0})
    assert len(details["trajectory"]) == 7 and details["motion_size"] == [96, 154]


def test_same_motion_at_another_size_and_frame_count(metric):
    ref = moving_square(vx=3, vy=1)
    big = moving_square(num_frames=15, height=160, width=256, vx=6, vy=2, size=48)
    values, _ = metric.score(Sample(big, "", ref))
    assert values["motion_trajectory_cos"] > 0.85 and values["motion_direction_cos"] > 0.7


def test_layout_free_score_ignores_position_but_not_direction(metric):
    ref = moving_square(vx=3, vy=1)
    opposite, _ = metric.score(Sample(moving_square(vx=-3, vy=-1), "", ref))
    perpendicular, _ = metric.score(Sample(moving_square(vx=-1, vy=3), "", ref))
    assert opposite["motion_trajectory_cos"] < -0.95
    assert abs(perpendicular["motion_trajectory_cos"]) < 0.2
    assert opposite["motion_epe"] > 1.0


def test_static_output_scores_zero_and_static_reference_is_undefined(metric):
    static = moving_square(vx=0, vy=0)
    values, _ = metric.score(Sample(static, "", moving_square(vx=3, vy=1)))
    assert values["motion_trajectory_cos"] == 0.0 and values["motion_direction_cos"] == 0.0
    values, _ = metric.score(Sample(static, "", static))
    assert all(isinstance(v, MetricUndefined) for v in values.values())
