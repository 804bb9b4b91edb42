"""Would a person accept these samples? Pixel-space checks against real held-out images.

Three numbers, each relative to real test images so that they read the same on any dataset:
- **judged**: the share of samples an independent classifier (not the model that drew them)
  labels as the intended class with confidence >= `confidence` (conditional sampling), or the
  number of classes it finds among them (unconditional);
- **realism**: median distance from a sample to its nearest training image, over the same median
  for real test images (1 = as close to the data as real digits are; noise and saturated
  salt-and-pepper textures sit far from every training image);
- **diversity**: median distance from a sample to its nearest *other* sample, over the same
  median among real test images (below 1 the samples are closer to each other than real images
  are: near-copies). A mean pairwise distance would not do: noise inflates it while chains collapse.
"""

from __future__ import annotations

import torch


def nearest_distance(a: torch.Tensor, b: torch.Tensor | None = None) -> torch.Tensor:
    """Euclidean distance from each row of `a` to its nearest row of `b`; with `b` None, to its
    nearest other row of `a`. Rows are flattened images, float64."""
    a = a.flatten(1).double()
    if b is None:
        d = torch.cdist(a, a)
        d.fill_diagonal_(float("inf"))
    else:
        d = torch.cdist(a, b.flatten(1).double())
    return d.min(1).values


def fit_judge(images: torch.Tensor, labels: torch.Tensor, seed: int = 0):
    """An RBF support-vector classifier with Platt probabilities on flattened [0, 1] pixels: the
    independent judge (scikit-learn, nothing shared with hdgen's models)."""
    from sklearn.svm import SVC

    return SVC(probability=True, random_state=seed).fit(images.flatten(1).double().numpy(), labels.numpy())


def judged(judge, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(predicted label, its probability) of the judge for each image."""
    p = torch.from_numpy(judge.predict_proba(images.flatten(1).double().numpy()))
    conf, idx = p.max(1)
    return torch.from_numpy(judge.classes_)[idx], conf


def sample_quality(samples: torch.Tensor, train: torch.Tensor, real: torch.Tensor, judge, klass: int | None = None,
                   confidence: float = 0.8) -> dict:
    """The three checks for `samples` (images in [0, 1]) against `real` held-out images in [0, 1]
    (the test images of `klass`, or the whole test split when unconditional) and the training images."""
    pred, conf = judged(judge, samples)
    real_pred, real_conf = judged(judge, real)
    out = {"n": len(samples),
           "realism": float(nearest_distance(samples, train).median() / nearest_distance(real, train).median()),
           "diversity": float(nearest_distance(samples).median() / nearest_distance(real).median())}
    if klass is not None:
        ok = (pred == klass) & (conf >= confidence)
        out.update({"class": klass, "judged": float(ok.double().mean()), "judge_confidence": float(conf.median()),
                    "real_judge_confidence": float(real_conf[real_pred == klass].median())})
    else:
        counts = torch.bincount(pred[conf >= confidence], minlength=int(judge.classes_.max()) + 1)
        out.update({"classes": int((counts > 0).sum()), "class_counts": counts.tolist(),
                    "confident": float((conf >= confidence).double().mean())})
    return out
