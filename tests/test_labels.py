import pytest

from aidetect import labels


def test_class_order_is_pinned_real_then_fake():
    # Keras' alphabetical folder order would be FAKE=0, REAL=1; ours is fixed the other way round
    assert labels.CLASS_NAMES == ("REAL", "FAKE")
    assert (labels.REAL_INDEX, labels.FAKE_INDEX) == (0, 1)


def test_positive_class_is_ai_generated():
    assert labels.POSITIVE_CLASS == "FAKE"
    assert labels.POSITIVE_INDEX == labels.FAKE_INDEX
    assert labels.DISPLAY_NAMES[labels.POSITIVE_CLASS] == "AI-generated"


@pytest.mark.parametrize("prob_ai, expected, confidence", [
    (0.9, "AI-generated", 0.9), (0.5, "AI-generated", 0.5), (0.2, "Real", 0.8)])
def test_verdict_at_default_threshold(prob_ai, expected, confidence):
    result = labels.verdict(prob_ai)
    assert result.label == expected
    assert result.confidence == pytest.approx(confidence)


def test_uncertain_band_and_threshold():
    assert labels.verdict(0.55, threshold=0.5, uncertain_band=0.1).label == "Uncertain"
    assert labels.verdict(0.65, threshold=0.5, uncertain_band=0.1).label == "AI-generated"
    assert labels.verdict(0.65, threshold=0.8).label == "Real"
    with pytest.raises(ValueError):
        labels.verdict(0.5, threshold=1.5)


def test_explanations_follow_the_models_own_answer_not_the_users_threshold():
    assert labels.predicted_index(0.5) == labels.FAKE_INDEX
    assert labels.predicted_index(0.49) == labels.REAL_INDEX
    assert labels.verdict(0.49, threshold=0.4).label == labels.AI_LABEL      # the user's call differs
