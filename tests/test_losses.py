"""Heads (margin math at known angles) and metric losses checked against naive Python loops."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch.profiler import ProfilerActivity, profile

from curate.train.config import HeadKind, Mining, TrainConfig
from curate.train.heads import ArcMargin, CosMargin, MarginHead, SoftmaxHead, SphereMargin, build_head
from curate.train.losses import CenterLoss, ContrastiveLoss, TrainingModel, TripletLoss, pairwise_distances


def _head_at_angle(margin: torch.nn.Module, theta: float, scale: float = 10.0) -> torch.Tensor:
    """Logits of a 2-class head whose centres are the axes, for a feature at ``theta`` from class 0."""
    head = MarginHead(2, 2, scale, margin)
    with torch.no_grad():
        head.weight.copy_(torch.tensor([[3.0, 0.0], [0.0, 0.5]]))  # lengths must not matter
    feature = 7.0 * torch.tensor([[math.cos(theta), math.sin(theta)]])
    return head(feature, torch.tensor([0]))[0]


@pytest.mark.parametrize(
    ("margin", "expected_target"),
    [
        (ArcMargin(0.5), math.cos(math.pi / 3 + 0.5)),
        (CosMargin(0.35), 0.5 - 0.35),
        (SphereMargin(4), -math.cos(4 * math.pi / 3) - 2.0),  # k = 1 on [pi/4, pi/2]: psi = -cos(4t) - 2
        (SphereMargin(4, 1.0), (0.5 + (-math.cos(4 * math.pi / 3) - 2.0)) / 2.0),
    ],
)
def test_margin_heads_at_sixty_degrees(margin: torch.nn.Module, expected_target: float) -> None:
    logits = _head_at_angle(margin, math.pi / 3)
    assert logits[0].item() == pytest.approx(10.0 * expected_target, abs=1e-4)
    assert logits[1].item() == pytest.approx(10.0 * math.sin(math.pi / 3), abs=1e-4)  # non-target untouched


def test_arc_margin_goes_on_linearly_past_pi_minus_m() -> None:
    theta = 2.9  # theta + m > pi
    logits = _head_at_angle(ArcMargin(0.5), theta, scale=1.0)
    assert logits[0].item() == pytest.approx(math.cos(theta) - 0.5 * math.sin(0.5), abs=1e-5)


@pytest.mark.parametrize("margin", [ArcMargin(0.5), CosMargin(0.35), SphereMargin(4), SphereMargin(3, 0.5)])
def test_margin_targets_fall_monotonically_and_stay_below_cosine(margin: torch.nn.Module) -> None:
    thetas = torch.linspace(0.01, math.pi - 0.01, 400)
    cos = torch.cos(thetas)
    target = margin(cos)
    assert torch.all(target[1:] < target[:-1])
    assert torch.all(target <= cos + 1e-6)


def test_head_without_labels_has_no_margin_and_build_head_picks_the_margin() -> None:
    head = MarginHead(2, 2, 4.0, ArcMargin(0.5))
    with torch.no_grad():
        head.weight.copy_(torch.eye(2))
    logits = head(torch.tensor([[1.0, 1.0]]))
    assert torch.allclose(logits, torch.full((1, 2), 4.0 / math.sqrt(2.0)))
    config = TrainConfig(images=None, workdir=None, head=HeadKind.COSFACE, margin_cos=0.2)
    built = build_head(config, 5)
    assert isinstance(built, MarginHead) and built.margin.margin_cos == 0.2 and built.weight.shape == (5, 128)
    assert isinstance(build_head(TrainConfig(head=HeadKind.SOFTMAX), 5), SoftmaxHead)


def _naive_distances(x: torch.Tensor) -> list[list[torch.Tensor]]:
    return [
        [torch.sqrt(((x[i] - x[j]) ** 2).sum().clamp_min(1e-12)) for j in range(len(x))]
        for i in range(len(x))
    ]


def _naive_triplet(x: torch.Tensor, labels: list[int], margin: float, mining: str) -> torch.Tensor:
    d = _naive_distances(x)
    n = len(labels)
    terms = []
    for a in range(n):
        positives = [p for p in range(n) if p != a and labels[p] == labels[a]]
        negatives = [q for q in range(n) if labels[q] != labels[a]]
        if not positives or not negatives:
            continue
        if mining == "batch_hard":
            hardest_p = max((d[a][p] for p in positives), key=lambda t: t.item())
            hardest_n = min((d[a][q] for q in negatives), key=lambda t: t.item())
            terms.append(F.relu(hardest_p - hardest_n + margin))
            continue
        for p in positives:
            farther = [d[a][q] for q in negatives if d[a][q].item() > d[a][p].item()]
            chosen = (
                min(farther, key=lambda t: t.item())
                if farther
                else max((d[a][q] for q in negatives), key=lambda t: t.item())
            )
            terms.append(F.relu(d[a][p] - chosen + margin))
    return torch.stack(terms).mean()


@pytest.mark.parametrize("mining", ["semi_hard", "batch_hard"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_triplet_mining_matches_a_naive_loop(mining: str, seed: int) -> None:
    generator = torch.Generator().manual_seed(seed)
    labels = [0, 0, 0, 1, 1, 2, 2, 2, 2, 3, 4, 4]  # identity 3 has no positive: it only serves as a negative
    x = F.normalize(torch.randn(len(labels), 8, generator=generator), dim=1).double().requires_grad_(True)
    x_naive = x.detach().clone().requires_grad_(True)
    loss = TripletLoss(0.3, Mining(mining))(x, torch.tensor(labels))
    expected = _naive_triplet(x_naive, labels, 0.3, mining)
    assert loss.item() > 0
    assert loss.item() == pytest.approx(expected.item(), abs=1e-5)
    loss.backward()
    expected.backward()
    assert torch.allclose(x.grad.float(), x_naive.grad.float(), atol=1e-5)


def test_semi_hard_prefers_the_nearest_negative_beyond_the_positive() -> None:
    # 1-D points: anchor 0, positive at 0.5, negatives at 0.3 (hard), 0.6 (semi-hard), 0.9 (semi-hard).
    x = torch.tensor([[0.0], [0.5], [0.3], [0.6], [0.9]])
    labels = torch.tensor([0, 0, 1, 2, 3])
    loss = TripletLoss(0.2, Mining.SEMI_HARD)(x, labels)
    # (a=0, p=1): negative 0.6 -> 0.5 - 0.6 + 0.2 = 0.1; (a=1, p=0): d(1,0)=0.5, negatives at 0.2, 0.1, 0.4:
    # none farther than 0.5 -> farthest 0.4 -> 0.5 - 0.4 + 0.2 = 0.3. Mean 0.2.
    assert loss.item() == pytest.approx(0.2, abs=1e-5)


def test_semi_hard_memory_grows_with_the_square_of_the_batch() -> None:
    batch = 384
    labels = torch.arange(batch) // 4
    x = F.normalize(torch.randn(batch, 16), dim=1).requires_grad_(True)
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        TripletLoss(0.2, Mining.SEMI_HARD)(x, labels).backward()
    largest = max(event.cpu_memory_usage for event in prof.events())
    square = batch * batch * 8  # one B x B int64 matrix
    assert 0 < largest <= 2 * square  # a B x B x B cube of floats would be 4 * batch / 16 = 96x larger


def test_contrastive_matches_a_naive_loop() -> None:
    labels = [0, 0, 1, 1, 1, 2]
    x = F.normalize(torch.randn(len(labels), 4, generator=torch.Generator().manual_seed(5)), dim=1)
    d = _naive_distances(x)
    pos, neg = [], []
    for i in range(len(labels)):
        for j in range(len(labels)):
            if i != j and labels[i] == labels[j]:
                pos.append(d[i][j] ** 2)
            elif labels[i] != labels[j]:
                neg.append(F.relu(1.2 - d[i][j]) ** 2)
    expected = (torch.stack(pos).mean() + torch.stack(neg).mean()) / 2
    assert ContrastiveLoss(1.2)(x, torch.tensor(labels)).item() == pytest.approx(expected.item(), abs=1e-6)


def test_center_loss_and_distances_on_known_points() -> None:
    loss = CenterLoss(2, 2)
    with torch.no_grad():
        loss.centers.copy_(torch.tensor([[0.0, 0.0], [1.0, 1.0]]))
    features = torch.tensor([[3.0, 4.0], [1.0, 2.0]])
    assert loss(features, torch.tensor([0, 1])).item() == pytest.approx(0.5 * (25.0 + 1.0) / 2)
    d = pairwise_distances(torch.tensor([[0.0, 0.0], [3.0, 4.0]]))
    assert d[0, 1].item() == pytest.approx(5.0) and d[0, 0].item() < 1e-5


def test_margin_strength_ramps_the_target_from_plain_cosine_to_the_full_margin() -> None:
    head = MarginHead(2, 2, 1.0, CosMargin(0.4))
    with torch.no_grad():
        head.weight.copy_(torch.eye(2))
    features, labels = torch.tensor([[1.0, 0.0]]), torch.tensor([0])
    targets = []
    for strength in (0.0, 0.5, 1.0):
        head.strength = strength
        with torch.no_grad():
            targets.append(float(head(features, labels)[0, 0]))
    assert targets == pytest.approx([1.0, 0.8, 0.6])


def test_training_accuracy_is_counted_without_the_margin() -> None:
    config = TrainConfig(images=None, workdir=None, head=HeadKind.COSFACE, margin_cos=0.5, embedding_dim=2)
    net = torch.nn.Module()
    net.backbone = torch.nn.Identity()
    model = TrainingModel(config, net, 2)
    with torch.no_grad():
        model.head.weight.copy_(torch.eye(2))
    angle = math.radians(40.0)  # nearer class 0 (cos 0.77) than class 1 (cos 0.64), but not by the margin
    out = model(torch.tensor([[math.cos(angle), math.sin(angle)]]), torch.tensor([0]))
    assert int(out["correct"]) == 1 and float(out["head_loss"].detach()) > math.log(2.0)
