import pytest

from vmc.prompts import appearance_invariant

CASES = [
    ("A cat is roaring on the grass under the tree.", "A cat is roaring."),
    ("Sharks are swimming in the ocean on a coral reef.", "Sharks are swimming."),
    ("a red circle is moving to the right on a blue background", "a circle is moving to the right"),
    ("a brown bear is walking", "a bear is walking"),
    ("pills are falling.", "pills are falling."),
    ("two sharks are moving", "two sharks are moving"),
    ("A man in a red jacket is skiing down the slope", "A man is skiing down"),
    ("The dog runs across the park.", "The dog runs."),
    ("A horse galloping on the beach at sunset", "A horse galloping"),
    ("Two people are riding bikes on the street", "Two people are riding bikes"),
    ("Colorful confetti are falling", "Confetti are falling"),
    ("A boy is kicking a red ball to the left in the park", "A boy is kicking a ball to the left"),
    ("A blue square is rotating clockwise on a white background", "A square is rotating clockwise"),
    ("The yellow star is growing", "The star is growing"),
    ("A bird flies over the lake", "A bird flies"),
    ("a car is moving, underwater", "a car is moving"),
    ("An astronaut is snowboarding underwater in deep sea", "An astronaut is snowboarding"),
    ("a spider-man is snowboarding", "a spider-man is snowboarding"),
    ("A woman is dancing gracefully on the stage", "A woman is dancing"),
    ("A train is moving towards the camera through the mountains", "A train is moving towards the camera"),
    ("A dog is running back and forth on the beach", "A dog is running back and forth"),
    ("A ball bouncing up and down", "A ball bouncing up and down"),
    ("A helicopter is flying from left to right over the city", "A helicopter is flying from left to right"),
    ("A group of penguins is walking on the ice", "A group of penguins is walking"),
    ("Leaves fall from the tree", "Leaves fall"),
    ("A child is riding a bike in desert", "A child is riding a bike"),
    ("a monkey is riding a red bike", "a monkey is riding a bike"),
    ("A girl with long hair is dancing on the stage", "A girl is dancing"),
    ("a green triangle is bouncing", "a triangle is bouncing"),
    ("A majestic dragon is flying in forest", "A dragon is flying"),
    ("a lamborghini is moving in space", "a lamborghini is moving"),
]


@pytest.mark.parametrize("prompt,expected", CASES)
def test_appearance_invariant(prompt, expected):
    assert appearance_invariant(prompt) == expected


def test_deterministic_and_unparseable_prompts_come_back_unchanged():
    assert appearance_invariant("sunset over the sea") == "sunset over the sea"
    assert all(appearance_invariant(p) == appearance_invariant(p) for p, _ in CASES)
