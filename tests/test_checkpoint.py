"""rbsf.checkpoint: what it says about unfinished training checkpoints."""
from rbsf.checkpoint import model_payload, unfinished_note
from rbsf.models.siamfc import SiamFCNet


def test_unfinished_training_checkpoint_says_how_far_it_got():
    payload = model_payload(SiamFCNet("fp", width=0.25), stage="teacher", finished=False,
                            epoch=3, step=120,
                            train_config={"stages": {"teacher": {"epochs": 10}}})
    assert unfinished_note(payload) == "unfinished teacher training: epoch 3 of 10, step 120"


def test_finished_and_shipped_checkpoints_have_no_note():
    net = SiamFCNet("fp", width=0.25)
    assert unfinished_note(model_payload(net, stage="teacher", finished=True)) is None
    assert unfinished_note(model_payload(net)) is None
    assert unfinished_note(net.state_dict()) is None
