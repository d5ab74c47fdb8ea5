"""Undoing a failed start removes only what that start made."""

from segsr.utils.fresh_folder import FreshFolder


def test_undo_never_removes_a_folder_that_was_there_and_not_moved_aside(tmp_path):
    earlier = tmp_path / 'run'
    earlier.mkdir()
    (earlier / 'user.txt').write_text('kept')
    FreshFolder.create(earlier, lambda: None).undo()
    assert (earlier / 'user.txt').read_text() == 'kept'


def test_undo_removes_the_folder_and_the_parents_it_made(tmp_path):
    made = tmp_path / 'results' / 'name'
    FreshFolder.create(made, lambda: made.mkdir(parents=True)).undo()
    assert not (tmp_path / 'results').exists()
