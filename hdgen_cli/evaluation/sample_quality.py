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
  Nearest-neighbour distances shrink as a set grows (64 real digits sit 1.3 times farther apart
  than 360 do), so the two sets are compared at the same size: the larger one is measured on
  random subsets as large as the smaller, and the median over `SUBSETS` of them is used.
"""

from __future__ import annotations

import torch

SUBSETS = 20



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


def spread(images: torch.Tensor, size: int, seed: int = 0) -> float:
    """Median distance from an image to its nearest other image, in sets of `size` images: all of
    `images` when there are no more, else the median over `SUBSETS` random subsets (seeded)."""
    if len(images) <= size:
        return float(nearest_distance(images).median())
    gen = torch.Generator().manual_seed(seed)
    values = [nearest_distance(images[torch.randperm(len(images), generator=gen)[:size]]).median()
              for _ in range(SUBSETS)]
    return float(torch.stack(values).median())


def fit_judge(images: torch.Tensor, labels: torch.Tensor, seed: int = 0):
    """An RBF support-vector classifier with Platt probabilities on flattened [0, 1] pixels: the
    independent judge (scikit-learn, nothing shared with hdgen's models). The sigmoid (Platt)
    calibration is fitted on 5-fold cross-validated decision values, one SVC on all the data
    (`SVC(probability=True)` is deprecated from scikit-learn 1.9)."""
    from sklearn.calibration import CalibratedClassifierCV  # deferred: sklearn is slow to import
    from sklearn.model_selection import StratifiedKFold
    from sklearn.svm import SVC

    folds = StratifiedKFold(5, shuffle=True, random_state=seed)
    judge = CalibratedClassifierCV(SVC(), method="sigmoid", cv=folds, ensemble=False)
    return judge.fit(images.flatten(1).double().numpy(), labels.numpy())


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
    size = min(len(samples), len(real))
    real_pred, real_conf = judged(judge, real)
    out = {"n": len(samples),
           "realism": float(nearest_distance(samples, train).median() / nearest_distance(real, train).median()),
           "diversity": spread(samples, size) / spread(real, size)}
    if klass is not None:
        ok = (pred == klass) & (conf >= confidence)
        out.update({"class": klass, "judged": float(ok.double().mean()), "judge_confidence": float(conf.median()),
                    "real_judge_confidence": float(real_conf[real_pred == klass].median())})
    else:
        counts = torch.bincount(pred[conf >= confidence], minlength=int(judge.classes_.max()) + 1)
        out.update({"classes": int((counts > 0).sum()), "class_counts": counts.tolist(),
                    "confident": float((conf >= confidence).double().mean())})
    return out
