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


@pytest.mark.parametrize("prob_ai, expected", [
    (0.9, "AI-generated"), (0.61, "AI-generated"), (0.6, "Uncertain"), (0.5, "Uncertain"), (0.4, "Uncertain"),
    (0.39, "Real"), (0.2, "Real")])
def test_verdict_with_the_one_set_of_defaults(prob_ai, expected):
    """Page, classify.py and Beam share these defaults: threshold 0.5, uncertain within 0.1."""
    result = labels.verdict(prob_ai)
    assert result.label == expected and result.prob_ai == prob_ai
    assert labels.verdict(0.5, uncertain_band=0).label == "AI-generated"


def test_probabilities_are_shown_without_false_certainty():
    assert labels.format_probability(0.9164) == "91.6%"
    assert labels.format_probability(0.99996) == "> 99.9%" and labels.format_probability(1.0) == "> 99.9%"
    assert labels.format_probability(0.00001) == "< 0.1%" and labels.format_probability(0.999) == "99.9%"


def test_the_decision_rule_is_said_in_words():
    assert labels.describe_decision(0.5, 0.1) == "AI-generated at 50% or more, Real below; Uncertain from 40% to 60%."
    assert labels.describe_decision(0.95, 0) == "AI-generated at 95% or more, Real below."
    assert labels.describe_decision(0.95, 0.1).endswith("Uncertain from 85% to 100%.")


def test_uncertain_band_and_threshold():
    assert labels.verdict(0.55, threshold=0.5, uncertain_band=0.1).label == "Uncertain"
    assert labels.verdict(0.65, threshold=0.5, uncertain_band=0.1).label == "AI-generated"
    assert labels.verdict(0.65, threshold=0.8).label == "Real"
    with pytest.raises(ValueError):
        labels.verdict(0.5, threshold=1.5)


def test_explanations_follow_the_models_own_answer_not_the_users_threshold():
    assert labels.predicted_index(0.5) == labels.FAKE_INDEX
    assert labels.predicted_index(0.49) == labels.REAL_INDEX
    assert labels.verdict(0.49, threshold=0.4, uncertain_band=0).label == labels.AI_LABEL   # the user's call differs
