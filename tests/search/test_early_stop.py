from search.trial import _hopeless

FRONT = [[0.30, 0.50, 0.60, 0.70], [0.10, 0.40, 0.55, 0.65]]


def test_below_every_front_member_at_that_epoch_stops():
    assert _hopeless(1, 0.39, FRONT, epochs=4)
    assert not _hopeless(1, 0.41, FRONT, epochs=4)  # beats one front member


def test_never_after_the_first_or_the_last_epoch():
    assert not _hopeless(0, 0.0, FRONT, epochs=4)
    assert not _hopeless(3, 0.0, FRONT, epochs=4)


def test_needs_two_front_members_that_reached_the_epoch():
    assert not _hopeless(1, 0.0, FRONT[:1], epochs=4)
    assert not _hopeless(2, 0.0, [[0.5, 0.6], [0.5, 0.6, 0.7]], epochs=4)
