"""Training configuration: one frozen dataclass per stage, and plans (presets) of all stages.

A plan is the whole recipe for a model: ``cpu_2h`` fits in about two hours on 2 CPU cores,
``gpu`` is the recipe at full strength for one GPU (larger batches, far more steps, the VAE on
whole images), ``smoke`` runs every stage for a few steps (tests). ``reproduce --minutes M``
scales a plan's steps to a time budget measured on the machine at hand; the plan as run is
written to the run folder as ``plan.json`` and can be given back to ``--plan`` to repeat it.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path


@dataclass(frozen=True)
class StageConfig:
    """One training stage."""

    steps: int  # optimizer steps
    batch_size: int  # per process
    lr: float  # peak learning rate (AdamW), cosine decay to lr / 10 after warmup
    warmup: int = 50  # linear warmup steps
    weight_decay: float = 0.01
    grad_clip: float = 1.0
    save_every: int = 200  # checkpoint (exact resume) every this many steps
    log_every: int = 10  # loss log line every this many steps
    #: stage 2/3 only: relative weight of each sample kind (training/data SAMPLE_KINDS)
    task_weights: tuple[tuple[str, float], ...] = ()
    #: decay of an exponential moving average of the trained weights, which the finished stage
    #: keeps in place of the last step's (0: none)
    ema: float = 0.0

    def __post_init__(self) -> None:
        if self.steps < 1 or self.batch_size < 1 or self.lr <= 0:
            raise ValueError("steps, batch_size and lr must be positive")
        if not 0.0 <= self.ema < 1.0:
            raise ValueError(f"ema must be in [0, 1), not {self.ema}: 0.999 averages ~1000 steps")


STAGES = ("vision", "vae", "unet", "mllm", "sft")

MLLM_WEIGHTS = (
    ("t2i", 3.0),
    ("vqa", 1.5),
    ("caption", 1.0),
    ("edit", 1.5),
    ("diic", 0.7),
    ("subject", 0.8),
    ("condition", 0.8),
    ("restore", 0.8),
    ("style", 0.8),
    ("psr", 1.0),
    ("brief", 2.0),
)
SFT_WEIGHTS = (
    ("t2i", 1.0),
    ("vqa", 1.0),
    ("caption", 0.5),
    ("edit", 2.5),
    ("diic", 2.0),
    ("subject", 1.5),
    ("condition", 1.0),
    ("restore", 1.0),
    ("style", 1.0),
    ("psr", 0.7),
    ("brief", 1.0),
)


@dataclass(frozen=True)
class TrainingPlan:
    """Every stage of one model, in order: vision (stage 0), vae + unet (stage 1), mllm (2), sft (3)."""

    name: str
    vision: StageConfig
    vae: StageConfig
    unet: StageConfig
    mllm: StageConfig
    sft: StageConfig
    vocab_size: int = 1354  # tokenizer size, = the preset's llm.vocab_size
    seed: int = 0
    regression_weight: float = 1.0  # (MSE + cosine) on generated features, vs the LM loss
    feature_noise: float = 0.1  # UNet conditioning noise (robust to regression error)
    # stages 2-3: the share of generated images whose slots read the LLM's own predictions
    # (scheduled sampling), and the no-gradient passes that make those predictions
    self_feed: float = 0.0
    self_feed_passes: int = 1
    # stages 2-3: each supervised token's LM-loss weight is its sample's supervised-token count
    # to the power -lm_length_power (normalised): 0 is the plain token mean, where a one-word
    # VQA answer weighs nothing beside a 40-word caption; 1 the mean of per-sample means; 0.5
    # square averaging, between the two
    lm_length_power: float = 0.0
    condition_dropout: float = 0.1  # UNet trained unconditioned this often, for CFG
    # stages 2-3: weight of the diffusion loss through the frozen UNet on each generated image's
    # predicted features, beside the regression (the official recipe's optional loss; 0: off)
    diffusion_weight: float = 0.0
    # stage 1b: encode this many scenes once and draw every batch from them (0: fresh renders
    # every step). On 2 CPU cores the encode is about half of a step (training/stages/scene_pool.py)
    unet_pool: int = 0
    # stage 1b: the share of the pool's scenes whose condition is what the LLM writes for a
    # training request of them, not what the tower reads (training/stages/written_scenes.py)
    unet_written: float = 0.0
    # stage 1b: the share of the UNet's conditions that also carry a residual of the LLM's own
    # error (what it writes for a caption minus the tower's features; training/stages/error_noise.py)
    unet_error_noise: float = 0.0
    unet_error_bank: int = 1024  # the residuals to draw from (about 1.5 minutes on 2 cores)
    # VAE trained on random crops of this fraction of the image side (1: whole renders). Its
    # GroupNorm layers normalise by each image's own statistics, so a VAE trained on crops comes
    # back far worse on whole images (training/NOTES.md, gate 1)
    vae_crop: float = 1.0
    # train only the VAE's decoder: its encoder, so the UNet's latent space, stays as it is
    vae_decoder_only: bool = False
    # weight of the VAE's image-gradient L1 (0: pixel losses only, as the bundled VAE was made)
    vae_edge_weight: float = 0.0
    extra: dict[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not 0.0 <= self.self_feed <= 1.0:
            raise ValueError(f"self_feed is a probability (0 to 1), got {self.self_feed}")
        if self.self_feed_passes < 1:
            raise ValueError(f"self_feed_passes must be at least 1, got {self.self_feed_passes}")
        if not 0.0 <= self.lm_length_power <= 1.0:
            raise ValueError(f"lm_length_power must be from 0 to 1, got {self.lm_length_power}")
        if self.diffusion_weight < 0:
            raise ValueError(f"diffusion_weight cannot be negative, got {self.diffusion_weight}")
        if self.unet_pool < 0:
            raise ValueError(f"unet_pool is a number of scenes (0: off), got {self.unet_pool}")
        if not 0.0 <= self.unet_written <= 1.0:
            raise ValueError(f"unet_written is a share (0 to 1), got {self.unet_written}")
        if not 0.0 <= self.unet_error_noise <= 1.0:
            raise ValueError(f"unet_error_noise is a share (0 to 1), got {self.unet_error_noise}")
        if self.unet_error_noise and self.unet_error_bank < 1:
            raise ValueError(f"unet_error_bank is a number of residuals, got {self.unet_error_bank}")
        if self.unet_written and not self.unet_pool:
            raise ValueError("unet_written needs a scene pool: set unet_pool to a number of scenes")

    def stage(self, name: str) -> StageConfig:
        if name not in STAGES:
            raise ValueError(f"unknown stage {name!r}; stages are {', '.join(STAGES)}")
        return getattr(self, name)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2)

    @classmethod
    def from_json(cls, text: str) -> TrainingPlan:
        data = json.loads(text)
        known = {f for f in cls.__dataclass_fields__}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown plan fields {unknown}")
        for name in STAGES:
            stage = dict(data[name])
            stage["task_weights"] = tuple((k, float(w)) for k, w in stage.get("task_weights", ()))
            data[name] = StageConfig(**stage)
        return cls(**data)

    def scaled(self, steps: float = 1.0, batch: float = 1.0) -> TrainingPlan:
        """The same plan with steps and batch sizes scaled (at least 1 each)."""

        def s(c: StageConfig) -> StageConfig:
            return replace(
                c,
                steps=max(1, int(c.steps * steps)),
                batch_size=max(1, int(c.batch_size * batch)),
                warmup=min(c.warmup, max(1, int(c.steps * steps) // 10)),
                save_every=max(1, min(c.save_every, int(c.steps * steps))),
            )

        return replace(
            self,
            vision=s(self.vision),
            vae=s(self.vae),
            unet=s(self.unet),
            mllm=s(self.mllm),
            sft=s(self.sft),
        )


def cpu_2h() -> TrainingPlan:
    """The bundled wegen-tiny's design in one short run: about 100 minutes of steps on 2 CPU
    cores with the 4x VAE (per step, measured by ``--minutes``' probe: vision 0.67 s, VAE 0.59 s,
    UNet 0.95 s with its batches rendered inline, LLM 1.12 s, SFT 1.33 s). The VAE trains on
    whole renders, 4 a step (the pixels of the 16 crops of 64 px it once took)."""
    return TrainingPlan(
        name="cpu_2h",
        vision=StageConfig(steps=400, batch_size=16, lr=1e-3),
        vae=StageConfig(steps=500, batch_size=4, lr=1e-3),
        unet=StageConfig(steps=3000, batch_size=16, lr=5e-4),
        mllm=StageConfig(steps=2000, batch_size=16, lr=1e-3, task_weights=MLLM_WEIGHTS),
        sft=StageConfig(steps=200, batch_size=16, lr=3e-4, task_weights=SFT_WEIGHTS),
    )


def gpu() -> TrainingPlan:
    """The recipe at full strength for one GPU: batches of 64, far more steps, the VAE on whole
    images. Its step counts are the ratios ``--minutes`` keeps when it fits them to a budget."""
    return TrainingPlan(
        name="gpu",
        # stage 0 learns colour in a few hundred steps but shape only slowly (a ViT from
        # scratch): 6000 steps are about 4.5 minutes on one H200 (44 ms a step with the conv stem
        # and the token head), and every later stage needs them
        vision=StageConfig(steps=6000, batch_size=64, lr=1e-3, warmup=200, save_every=1000),
        vae=StageConfig(steps=3000, batch_size=32, lr=1e-3, warmup=100, save_every=500),
        unet=StageConfig(steps=10000, batch_size=64, lr=5e-4, warmup=200, save_every=1000),
        mllm=StageConfig(
            steps=6000,
            batch_size=64,
            lr=1e-3,
            warmup=200,
            save_every=1000,
            task_weights=MLLM_WEIGHTS,
        ),
        sft=StageConfig(
            steps=1500,
            batch_size=64,
            lr=3e-4,
            warmup=100,
            save_every=500,
            task_weights=SFT_WEIGHTS,
        ),
    )


def gpu_decoder() -> TrainingPlan:
    """Stage 1 again on one GPU, from a trained model's de-tokenizer (``warm_start --done
    vision,mllm,sft``): the VAE continued on whole images, then the UNet on its latents (the 8x
    VAE bundled until 2026-12-01, 1400 steps of 32, capped every image metric: ``checks.decoder
    --ceilings``); the LLM writes vision features, so it is kept. Step
    counts are the ratios ``--minutes`` keeps (an H100 ran 36 ms a VAE step, 74 ms a UNet step)."""
    return replace(
        gpu(),
        name="gpu_decoder",
        vae=StageConfig(steps=12000, batch_size=32, lr=3e-4, warmup=200, save_every=2000),
        unet=StageConfig(steps=6000, batch_size=64, lr=3e-4, warmup=200, save_every=1000),
    )


def continue_llm() -> TrainingPlan:
    """Stages 2 and 3 again, from a trained model whose tower and de-tokenizer stay
    (``warm_start --base MODEL --done vision,vae,unet``): the recipe of the bundled LLM's last
    CPU runs (cpu9, cpu15 in training/NOTES.md), on the data as it is now. Three in four
    generated images read the LLM's own predictions (four no-gradient passes), as the app's
    free-running generation does; SFT weighs text-to-image up. Batches of 16 fit 2 CPU cores
    (about 2 s a stage-2 step); ``--minutes`` scales the steps. Its seed differs from every
    earlier run's, so a continuation sees new samples."""
    base = cpu_2h()
    return replace(
        base,
        name="continue_llm",
        mllm=replace(base.mllm, steps=700, lr=2e-4, warmup=20, save_every=100),
        sft=replace(
            base.sft,
            steps=150,
            lr=1e-4,
            warmup=10,
            save_every=50,
            task_weights=(("t2i", 1.5), *((k, w) for k, w in SFT_WEIGHTS if k != "t2i")),
        ),
        seed=20,
        self_feed=0.75,
        self_feed_passes=4,
    )


def gpu_llm() -> TrainingPlan:
    """`continue_llm` at one GPU's scale, with the diffusion loss through the frozen UNet
    (``diffusion_weight`` 10: the CPU run llm4d's share, in training/NOTES.md): batches of 64,
    3000 stage-2 steps, about 22 times the samples of llm4d's 546 steps of 16. An H100 ran a
    stage-2 step of 64 in 84 ms without the loss, and the loss cost 31% more a step on the CPU;
    ``--minutes`` keeps the ratios (``training/continue_llm_gpu.sh``)."""
    base = continue_llm()
    return replace(
        base,
        name="gpu_llm",
        mllm=replace(base.mllm, steps=3000, batch_size=64, warmup=100, save_every=500),
        sft=replace(base.sft, steps=600, batch_size=64, warmup=50, save_every=200),
        diffusion_weight=10.0,
    )


def smoke() -> TrainingPlan:
    """Every stage for two steps of batch two: seconds (tests)."""

    def tiny(c: StageConfig) -> StageConfig:
        return replace(c, steps=2, batch_size=2, warmup=1, save_every=1, log_every=1)

    base = cpu_2h()
    return replace(
        base,
        name="smoke",
        vision=tiny(base.vision),
        vae=tiny(base.vae),
        unet=tiny(base.unet),
        mllm=tiny(base.mllm),
        sft=tiny(base.sft),
    )


PLANS: dict[str, Callable[[], TrainingPlan]] = {
    "cpu_2h": cpu_2h,
    "gpu": gpu,
    "gpu_decoder": gpu_decoder,
    "continue_llm": continue_llm,
    "gpu_llm": gpu_llm,
    "smoke": smoke,
}


def plan(name: str) -> TrainingPlan:
    """A preset by name, or a ``plan.json`` written by an earlier run."""
    if name.endswith(".json"):
        path = Path(name)
        if not path.is_file():
            raise ValueError(
                f"no plan file {name}: give a preset ({', '.join(PLANS)}) or a plan.json"
            )
        return TrainingPlan.from_json(path.read_text(encoding="utf-8"))
    try:
        return PLANS[name]()
    except KeyError:
        raise ValueError(
            f"unknown plan {name!r}; choose one of {', '.join(PLANS)} or a plan.json"
        ) from None
