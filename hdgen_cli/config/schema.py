"""Pydantic models for one whole run: data, model, energy, sampler, objective, optim, train, output.

Every field has a default so a preset only states what differs; `extra="forbid"` makes an
unknown key an error (the CLI turns it into a did-you-mean line). The resolved config is
snapshotted into every checkpoint (nanoGPT style) so a checkpoint alone rebuilds the run.
"""

from __future__ import annotations

import math
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    @field_validator("*", mode="after")
    @classmethod
    def _finite(cls, value):
        # NaN/inf slip through `gt=0` style bounds in pydantic; refuse them everywhere.
        if isinstance(value, float) and not math.isfinite(value):
            raise ValueError("must be a finite number")
        return value


class StreamConfig(Section):
    """One data stream of the training loop (the p(x) stream or the labelled CE stream)."""

    batch_size: int = Field(64, ge=1)
    augment: bool = True
    sigma: float = Field(0.0, ge=0, description="std of Gaussian noise added in the model range")
    dequantize: bool = Field(False, description="u = (uint8 + U(0, 1)) / 256 instead of uint8 / 255 (CLEL)")


class DataConfig(Section):
    name: str = "digits"
    data_dir: str | None = None
    download: bool = False
    image_size: int | None = Field(None, ge=4, description="resize to this size; None keeps the native size")
    pad_to: int | None = Field(
        None, ge=4, description="zero-pad smaller images, centred, to this size before any resize "
                                "(32 gives the papers' 32x32 MNIST / Fashion-MNIST for the WRN presets)")
    n_valid: int | float = Field(
        0, ge=0, description="training images held out for validation: a count, or a fraction in (0, 1)"
    )
    split_seed: int = 1234
    pixel_range: Literal["symmetric", "unit"] = Field(
        "symmetric", description="model range: symmetric is [-1, 1] (x = 2u - 1), unit is [0, 1]"
    )
    aug_pad: int | None = Field(
        None, ge=0, description="reflect padding before the random crop; None is 1/8 of the image side (4 on 32x32)")
    aug_flip: bool | None = Field(None, description="horizontal flip; None uses the dataset's default")
    px: StreamConfig = StreamConfig()
    ce: StreamConfig = StreamConfig()
    epoch_by: Literal["px", "ce"] = Field("px", description="which stream's length defines an epoch")
    shared_batch: bool = Field(
        False, description="JEM family: the p(x) term reads the CE batch, so one forward pass gives both CE and "
                           "E(x); data.px is then unused (the official codes draw two batches)")
    eval_sigma: float = Field(0.0, ge=0, description="noise added to evaluation inputs (0 = clean protocol)")


class ModelConfig(Section):
    """Backbone. Each registered backbone documents which of these fields it reads."""

    name: str = "wrn"
    depth: int = Field(28, ge=1)
    width: int = Field(10, ge=1)
    norm: Literal["none", "batch"] = "none"
    bn_momentum: float = Field(0.1, gt=0, le=1, description="PyTorch convention: new = (1-m) old + m batch")
    dropout: float = Field(0.0, ge=0, lt=1)
    leak: float = Field(0.2, ge=0, description="LeakyReLU negative slope")
    head: bool = Field(True, description="linear classifier head on the pooled features")
    channels: int | None = Field(None, ge=1, description="CLEL ResNets: base channel count (None: the paper's 64/128/256)")


class EnergyConfig(Section):
    name: str = "logits"
    mmc_scale: float = Field(10.0, gt=0, description="norm S of the fixed Max-Mahalanobis class means (mmc energy)")
    latent_beta: float = Field(0.01, ge=0, description="spherical energy: vMF concentration beta of p(z|x) (CLEL)")


class BufferConfig(Section):
    size: int = Field(10000, ge=1)
    reinit: float = Field(0.05, ge=0, le=1, description="probability a drawn chain restarts from p0")
    init: str = Field("uniform", description="initial distribution p0")


class SamplerConfig(Section):
    name: str = Field("sgld", description="a registered sampler: none, sgld, pyld, gmmc")
    steps: int = Field(20, ge=1, description="SGLD steps K, or PYLD outer steps M (full forward/backward passes)")
    inner_steps: int = Field(1, ge=1, description="PYLD inner steps N per outer step (cheap, first layer only)")
    step_size: float = Field(1.0, gt=0, description="SGLD step, or PYLD inner step (JEM++ pyld_lr)")
    noise: float = Field(0.01, ge=0)
    noise_after_clamp: bool = Field(False, description="add noise after the x clamp (JEM++) instead of before (JEM, SADA)")
    grad_clamp: float | None = Field(None, gt=0, description="clamp the input gradient to [-c, c] (proximal SGLD)")
    x_clamp: bool = Field(False, description="clamp chains to the data range after each step")
    model_mode: Literal["eval", "train"] = "eval"
    freeze_bn_stats: bool = Field(False, description="sampler passes leave BatchNorm running statistics untouched")
    transition: Literal["none", "strong_aug"] = Field(
        "none", description="strong_aug: one SimCLR augmentation of every chain per `steps` steps (CLEL)")
    latent_std: float = Field(0.001, ge=0, description="gmmc: std gamma_s of the latent target z ~ N(mu_y, gamma_s^2 I)")
    latent: Literal["staged", "injected"] = Field(
        "staged", description="gmmc: draw z once per chain (staged) or anew at every step (injected)")
    buffer: BufferConfig = BufferConfig()


class OptimConfig(Section):
    name: Literal["sgd", "adam"] = "adam"
    lr: float = Field(1e-4, gt=0)
    momentum: float = Field(0.9, ge=0, lt=1)
    betas: tuple[float, float] = (0.9, 0.999)
    weight_decay: float = Field(0.0, ge=0)
    nesterov: bool = False
    warmup_iters: int = Field(0, ge=0)
    schedule: Literal["step", "cosine"] = Field("step", description="after warmup: step decay, or cosine to 0 per iteration")
    decay_epochs: list[int] = []
    decay_rate: float = Field(0.3, gt=0)
    sam_rho: float = Field(0.0, ge=0, description="SAM neighbourhood radius; 0 turns SAM off")
    sam_adaptive: bool = Field(False, description="ASAM: perturbation scaled by |theta|")

    @field_validator("betas")
    @classmethod
    def _betas(cls, v):
        if not all(0 <= b < 1 for b in v):
            raise ValueError("betas must lie in [0, 1)")
        return v


class GMMCObjectiveConfig(Section):
    """[GMMC] Approaches 1-3: beta = 0 is discriminative, beta > 0 generative from `start_epoch` on."""

    beta: float = Field(0.5, ge=0, description="weight of the sampled-data term (0: discriminative only)")
    start_epoch: int = Field(0, ge=0, description="epoch at which the generative term switches on (joint training)")
    ramp_epochs: int = Field(0, ge=0, description="ramp beta up linearly over this many epochs after start_epoch")


class HDGEConfig(Section):
    """[HDGE] contrastive log q(x|y): the negatives, their number, the temperature and the positive's form."""

    negatives: Literal["queue", "batch"] = Field(
        "queue", description="queue: K past logits (MoCo style, Alg. 1); batch: the other batch examples (SimCLR style, Alg. 2)")
    queue_size: int = Field(65536, ge=1, description="K, the number of stored logit vectors")
    temperature: float = Field(0.1, gt=0)
    positive: Literal["eq15", "lse-onehot"] = Field(
        "eq15", description="eq15: s(x)[y]/T; lse-onehot: the official code's log(e^{s[y]} + C - 1)/T")


class CLELConfig(Section):
    """[CLEL] training: the EBM loss weights, the contrastive latent encoder and the EMA copies."""

    alpha: float = Field(1.0, ge=0, description="weight of the energy L2 term mean(E(x+)^2 + E(x-)^2)")
    ebm_batch: int = Field(64, ge=1, description="data images (and chains) per iteration for the EBM; the rest of "
                                                 "a larger data.px batch feeds only the encoder")
    temperature: float = Field(0.2, gt=0, description="NT-Xent temperature")
    encoder_width: int = Field(64, ge=1, description="ResNet-18 base width of the latent encoder h")
    encoder_optim: OptimConfig = OptimConfig(name="sgd", lr=0.03, momentum=0.9, weight_decay=5e-4, schedule="cosine")
    ema_half_life: float = Field(20000, gt=0, description="EMA half-life in training images")
    ema_copy_iters: int = Field(312, ge=0, description="iterations during which the EMA is a plain copy")


class ObjectiveConfig(Section):
    name: str = Field(
        "jem", description="a registered objective; jem: CE + p(x) (+ p(x|y), + HDGE); gmmc: the MMC distance losses; clel: EBM + latent encoder")
    ce_weight: float = Field(1.0, ge=0)
    px_weight: float = Field(1.0, ge=0, description="weight of the p(x) contrastive-divergence term")
    pxy_weight: float = Field(0.0, ge=0, description="weight of the p(x|y) term (class-conditional samples)")
    l2_weight: float = Field(0.0, ge=0, description="energy-squared regulariser on data and samples")
    l2_form: Literal["mean_of_squares", "square_of_mean"] = Field(
        "mean_of_squares", description="the l2_weight term: mean(E^2) (IGEBM) or (mean E)^2 (the JEM++ and "
                                       "SADA-JEM codes' l2_coeff), each over data and samples")
    hdge_weight: float = Field(0.0, ge=0, description="weight of HDGE's contrastive log q(x|y) term")
    hdge: HDGEConfig = HDGEConfig()
    gmmc: GMMCObjectiveConfig = GMMCObjectiveConfig()
    clel: CLELConfig = CLELConfig()


class GuardConfig(Section):
    """The divergence guard (docs/methods/shared.md): what counts as divergence and how training recovers."""

    loss_limit: float = Field(1e8, gt=0, description="|loss| above this (or a non-finite loss) is divergence")
    energy_limit: float = Field(1e5, gt=0, description="|E(data)| or |E(samples)| above this is divergence")
    gap_limit: float = Field(1e4, gt=0, description="|E(samples) - E(data)| above this is divergence")
    on_divergence: Literal["recover", "stop"] = Field(
        "recover", description="recover: roll back to the last good state and apply the remedies; stop: exit 3")
    recoveries: int = Field(3, ge=0, description="roll-backs allowed before giving up with exit code 3")
    remedies: list[Literal["more_steps", "lower_lr", "reset_buffer", "lower_momentum", "energy_l2", "clip_grad"]] = Field(
        ["lower_momentum", "energy_l2"], description="applied at every roll-back; docs/stability.md says what each "
                                                     "does and what the default pair rescued")
    steps_factor: float = Field(2.0, ge=1, description="more_steps multiplies the sampler steps by this")
    lr_factor: float = Field(0.5, gt=0, lt=1, description="lower_lr multiplies the learning rate by this")
    momentum_factor: float = Field(0.5, ge=0, lt=1, description="lower_momentum multiplies the optimizer's momentum "
                                                               "(SGD momentum, Adam beta1) by this")
    l2_weight: float = Field(0.1, gt=0, description="energy_l2 adds this weight of the energy-magnitude penalty "
                                                    "(objective.l2_form; JEM-family objectives)")
    clip_norm: float = Field(1.0, gt=0, description="clip_grad clips the parameters' gradient norm to this")
    snapshot_every: int = Field(100, ge=1, description="iterations between the in-memory good states rolled back to")
    early_rise: float = Field(1.0, ge=0, description="the early sign: the logged E gap this far above the median of "
                                                     "its last 20 values; while raised no new good state is kept "
                                                     "(0: off)")

    @field_validator("remedies", mode="before")
    @classmethod
    def _comma_list(cls, value):
        # `train.guard.remedies=more_steps,reset_buffer` on the command line
        return [v.strip() for v in value.split(",") if v.strip()] if isinstance(value, str) else value


class LogConfig(Section):
    tensorboard: bool = Field(False, description="also log to RUN/tb/ for TensorBoard: every logged scalar, the guard's "
                                                 "events, energy histograms and buffer grids each epoch "
                                                 "(pip install 'hdgen[tensorboard]')")


class TrainConfig(Section):
    epochs: int = Field(200, ge=1)
    max_iters: int | None = Field(None, ge=1, description="stop after this many iterations (overrides epochs)")
    eval_every: int = Field(1, ge=1, description="evaluate on the validation/test split every N epochs")
    log_every: int = Field(20, ge=1, description="iterations between metric log lines (and divergence checks)")
    ckpt_every: int = Field(1, ge=1, description="epochs between rewrites of last.safetensors")
    ckpt_every_iters: int = Field(0, ge=0, description="also rewrite last.safetensors every N iterations (0: off); "
                                                       "for long epochs")
    keep_every: int = Field(0, ge=0, description="epochs between checkpoints kept as epoch-NNNN.safetensors (0: none)")
    keep_iters: list[int] = Field(
        [], description="iterations at which a checkpoint is kept as iter-NNNNNNN.safetensors (GMMC's gamma-hat "
                        "fitted there), so one run can be evaluated at several training budgets")
    guard: GuardConfig = GuardConfig()
    log: LogConfig = LogConfig()
    device: str = "auto"
    seed: int = 1
    precision: Literal["fp32", "bf16"] = Field("fp32", description="bf16: autocast the forward passes (GPU fast path)")
    channels_last: bool | Literal["auto"] = Field(
        "auto", description="channels-last memory format for the model; auto: on for a CPU (1.05-1.39x faster "
                            "training steps there, measured), off for a GPU until gpu_check.py has measured it")
    compile: bool = Field(False, description="torch.compile the backbone in place")
    fid_every: int = Field(0, ge=0, description="epochs between live FIDs of buffer images (0: off)")
    fid_samples: int = Field(1000, ge=2, description="buffer images per live FID")
    fid_features: str | None = Field(None, description="classifier checkpoint whose features the live FID uses "
                                                       "(None: the FID Inception)")
    fid_inception_weights: str | None = Field(None, description="pt_inception-2015-12-05 weights file for the live FID")

    @field_validator("keep_iters")
    @classmethod
    def _positive_iterations(cls, value: list[int]) -> list[int]:
        if any(i < 1 for i in value):
            raise ValueError("every kept iteration must be at least 1")
        return sorted(set(value))

    @model_validator(mode="before")
    @classmethod
    def _renamed(cls, data):
        # Earlier builds had one flat threshold; checkpoints and presets that name it still load.
        if isinstance(data, dict) and "divergence_threshold" in data:
            data = dict(data)
            guard = dict(data.get("guard") or {})
            guard.setdefault("loss_limit", data.pop("divergence_threshold"))
            data["guard"] = guard
        return data


class OutputConfig(Section):
    root: str = "runs"
    grid_size: int = Field(64, ge=1, description="images in the sample grid written after training")
    final_sample_steps: int = Field(0, ge=0, description="extra sampler steps when writing the final grid")


class RunConfig(Section):
    name: str = "custom"
    description: str = ""
    data: DataConfig = DataConfig()
    model: ModelConfig = ModelConfig()
    energy: EnergyConfig = EnergyConfig()
    sampler: SamplerConfig = SamplerConfig()
    objective: ObjectiveConfig = ObjectiveConfig()
    optim: OptimConfig = OptimConfig()
    train: TrainConfig = TrainConfig()
    output: OutputConfig = OutputConfig()

    @model_validator(mode="after")
    def _consistent(self):
        obj = self.objective
        if self.data.shared_batch and obj.name != "jem":
            raise ValueError("data.shared_batch applies to the jem objective only; remove it")
        if obj.name == "clel":
            if self.energy.name != "spherical" or self.sampler.name != "sgld":
                raise ValueError("the clel objective needs energy.name=spherical and sampler.name=sgld")
            if self.data.px.batch_size < obj.clel.ebm_batch:
                raise ValueError("data.px.batch_size must be at least objective.clel.ebm_batch")
            return self
        if obj.name == "gmmc" or self.sampler.name == "gmmc":
            if self.energy.name != "mmc":
                raise ValueError("the gmmc objective and sampler need the Max-Mahalanobis head; set energy.name=mmc")
        if obj.name == "gmmc":
            if obj.gmmc.beta > 0 and self.sampler.name == "none":
                raise ValueError("objective.gmmc.beta > 0 needs a sampler; set sampler.name=gmmc")
            return self
        needs_samples = obj.px_weight > 0 or obj.pxy_weight > 0
        if needs_samples and self.sampler.name == "none":
            raise ValueError("objective.px_weight/pxy_weight > 0 needs a sampler; set sampler.name=sgld")
        if obj.hdge_weight > 0 and self.energy.name != "logits":
            raise ValueError("the HDGE term contrasts classifier logits; set energy.name=logits")
        if obj.ce_weight == 0 and obj.hdge_weight == 0 and not needs_samples:
            raise ValueError("every objective weight is 0; nothing would be trained")
        return self

    @field_validator("data")
    @classmethod
    def _n_valid(cls, data):
        if isinstance(data.n_valid, float) and not data.n_valid < 1:
            raise ValueError("data.n_valid must be a whole count or a fraction below 1")
        return data

    @property
    def uses_px_stream(self) -> bool:
        """Whether training reads the unlabelled p(x) stream (JEM's px term, CLEL's data)."""
        if self.objective.name == "clel":
            return True
        return (self.objective.name == "jem" and self.needs_samples and self.objective.px_weight > 0
                and not self.data.shared_batch)

    @property
    def uses_ce_stream(self) -> bool:
        """Whether training reads labels (every objective but the unsupervised CLEL)."""
        return self.objective.name != "clel"

    @property
    def needs_samples(self) -> bool:
        obj = self.objective
        if obj.name == "clel":
            return True
        if obj.name == "gmmc":
            return self.sampler.name != "none" and obj.gmmc.beta > 0
        return self.sampler.name != "none" and (obj.px_weight > 0 or obj.pxy_weight > 0)
