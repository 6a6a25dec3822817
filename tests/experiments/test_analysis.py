"""Study statistics against independent references: published t-table quantiles, float64 numeric
integration of Student's t density, and the textbook interval formulas written out by hand."""
import math
import statistics

import pytest

from experiments import analysis
from experiments.analysis import Difference

# Two-sided 95% critical values t(0.975, df) from standard tables.
T_TABLE = {1: 12.7062, 2: 4.3027, 3: 3.1824, 4: 2.7764, 5: 2.5706, 10: 2.2281, 30: 2.0423, 120: 1.9799}


@pytest.mark.parametrize("df, expected", sorted(T_TABLE.items()))
def test_t_quantile_matches_the_t_table(df, expected):
    assert analysis.t_quantile(0.975, df) == pytest.approx(expected, abs=6e-5)


def test_t_quantile_tends_to_the_normal_quantile():
    assert analysis.t_quantile(0.975, 1e7) == pytest.approx(1.959964, abs=1e-5)


def _t_tail_by_integration(t: float, df: float, steps: int = 20_000) -> float:
    """P(|T| > t) = 1 − 2·∫₀ᵗ density, Simpson's rule in float64."""
    log_norm = math.lgamma((df + 1) / 2) - math.lgamma(df / 2) - 0.5 * math.log(df * math.pi)
    density = lambda u: math.exp(log_norm - (df + 1) / 2 * math.log1p(u * u / df))  # noqa: E731
    h = t / steps
    total = density(0) + density(t) + sum((4 if i % 2 else 2) * density(i * h) for i in range(1, steps))
    return 1.0 - 2.0 * total * h / 3.0


@pytest.mark.parametrize("t, df", [(2.1, 2.88), (0.7, 1.5), (3.3, 7.25), (1.96, 40.0)])
def test_t_tail_matches_numeric_integration_for_fractional_df(t, df):
    assert analysis.t_two_sided_p(t, df) == pytest.approx(_t_tail_by_integration(t, df), abs=1e-9)


def test_seed_stats_use_the_sample_standard_deviation():
    values = [3.02, 2.98, 3.10, 2.95]

    stats = analysis.seed_stats(values)

    assert stats.n == 4 and stats.mean == pytest.approx(statistics.fmean(values))
    assert stats.std == pytest.approx(statistics.stdev(values)) and (stats.min, stats.max) == (2.95, 3.10)
    assert analysis.seed_stats([3.0]).std is None and analysis.seed_stats([]) is None


def test_shared_seeds_give_a_paired_interval():
    baseline = {0: 3.00, 1: 3.10, 2: 2.95}
    arm = {0: 2.90, 1: 3.05, 2: 2.90}

    result = analysis.difference(arm, baseline)

    diffs = [-0.10, -0.05, -0.05]
    mean = sum(diffs) / 3
    sd = math.sqrt(sum((d - mean) ** 2 for d in diffs) / 2)
    assert result.method == "paired" and result.seeds == 3
    assert result.estimate == pytest.approx(mean)
    assert result.half_width == pytest.approx(4.3027 * sd / math.sqrt(3), rel=2e-5)
    assert result.relative == pytest.approx(100 * mean / statistics.fmean(baseline.values()))
    low, high = result.interval
    assert low == pytest.approx(mean - result.half_width) and high == pytest.approx(mean + result.half_width)
    assert low < 0 < high and not result.significant  # three seeds this close cannot rule out zero


def test_without_shared_seeds_it_uses_welch():
    # Equal sizes and variances give Welch–Satterthwaite df = 2(n − 1) = 4 exactly.
    arm = {0: 1.0, 1: 2.0, 2: 3.0}
    baseline = {10: 2.5, 11: 3.5, 12: 4.5}

    result = analysis.difference(arm, baseline)

    assert result.method == "welch" and result.estimate == pytest.approx(-1.5)
    assert result.half_width == pytest.approx(2.7764 * math.sqrt(1 / 3 + 1 / 3), rel=2e-5)
    assert not result.significant  # the interval [-3.35, 0.35] includes zero


def test_one_seed_has_no_interval():
    result = analysis.difference({0: 2.9}, {0: 3.0})

    assert result.method == "none" and result.half_width is None and result.interval is None
    assert result.estimate == pytest.approx(-0.1) and not result.significant


def test_the_verdict_reads_like_a_sentence():
    beats = Difference(estimate=-0.036, half_width=0.012, method="paired", seeds=3, reference_mean=2.0)
    worse = Difference(estimate=0.05, half_width=0.01, method="paired", seeds=2, reference_mean=2.5)
    noise = Difference(estimate=-0.01, half_width=0.04, method="paired", seeds=2, reference_mean=2.0)
    single = Difference(estimate=-0.02, half_width=None, method="none", seeds=1, reference_mean=2.0)

    assert analysis.verdict_text("integration", beats) == "integration beats baseline by 1.8% ± 0.6% val loss over 3 seeds"
    assert analysis.verdict_text("+IDEA-0003", worse) == "+IDEA-0003 is worse than baseline by 2.0% ± 0.4% val loss over 2 seeds"
    assert analysis.verdict_text("integration", noise) == (
        "integration is indistinguishable from baseline (0.5% ± 2.0% val loss over 2 seeds)")
    assert analysis.verdict_text("integration", single) == (
        "integration beats baseline by 1.0% val loss over 1 seed (fewer than 2 seeds: no confidence interval)")


def test_one_seed_marginals_say_so_next_to_the_number():
    arms = analysis.arm_results([
        ("baseline", "baseline", [], {0: 3.0}),
        ("all", "all", ["IDEA-0001", "IDEA-0002"], {0: 2.9}),
        ("all-IDEA-0001", "leave_one_out", ["IDEA-0002"], {0: 2.95}),
    ])
    (marginal,) = analysis.leave_one_out_marginals(arms)

    assert analysis.marginal_text(marginal) == ("IDEA-0001 contributes 1.7% val loss (removing it raises the loss) "
                                                "(fewer than 2 seeds: no confidence interval)")


def test_arms_that_trained_the_baselines_runs_are_not_called_indistinguishable():
    values = {0: 3.0, 1: 3.1}
    arms = analysis.arm_results(
        [("baseline", "baseline", [], values), ("+IDEA-0001", "single", ["IDEA-0001"], values),
         ("all", "all", ["IDEA-0001", "IDEA-0002"], {0: 2.9, 1: 3.0}),
         ("all-IDEA-0002", "leave_one_out", ["IDEA-0001"], {0: 2.9, 1: 3.0})],
        run_sets={"baseline": frozenset({1, 2}), "+IDEA-0001": frozenset({1, 2}), "all": frozenset({3, 4}),
                  "all-IDEA-0002": frozenset({3, 4})})

    assert analysis.study_verdict("ablation", arms)[0] == (
        "+IDEA-0001 trained the identical config as baseline: there is no effect to measure")
    (marginal,) = analysis.leave_one_out_marginals(arms)
    assert analysis.marginal_text(marginal) == (
        "IDEA-0002 changes nothing here: without it the arm trains the identical config")


def test_it_warns_about_single_seeds_and_seed_noise():
    single = analysis.difference({0: 2.9}, {0: 3.0})
    noisy = analysis.difference({0: 2.99, 1: 3.02}, {0: 3.0, 1: 3.0})
    clear = analysis.difference({0: 2.80, 1: 2.81, 2: 2.79}, {0: 3.0, 1: 3.01, 2: 2.99})

    assert analysis.warnings_for(single, None) == [
        "fewer than 2 seeds: no confidence interval; run at least 2 seeds per arm"]
    assert analysis.warnings_for(noisy, None) == [
        "the effect is inside seed noise: the 95% interval of the difference includes zero"]
    assert analysis.warnings_for(clear, analysis.seed_stats([3.0, 3.01, 2.99])) == []


def test_leave_one_out_marginals_measure_each_ideas_contribution():
    seeds = (0, 1, 2)
    arms = analysis.arm_results([
        ("baseline", "baseline", [], {s: 3.00 + 0.01 * s for s in seeds}),
        ("all", "all", ["IDEA-0001", "IDEA-0002"], {s: 2.90 + 0.01 * s for s in seeds}),
        ("all-IDEA-0001", "leave_one_out", ["IDEA-0002"], {0: 2.97, 1: 2.985, 2: 2.995}),  # removing 1 hurts
        ("all-IDEA-0002", "leave_one_out", ["IDEA-0001"], {0: 2.905, 1: 2.905, 2: 2.925}),  # 2 adds ~nothing
    ])

    marginals = analysis.leave_one_out_marginals(arms)

    assert [m.idea_key for m in marginals] == ["IDEA-0001", "IDEA-0002"]
    first, second = marginals
    assert first.difference.estimate == pytest.approx((0.07 + 0.075 + 0.075) / 3) and first.helps
    assert not second.helps
    # 0.0733 / 2.91 = 2.52%; half width 4.3027 · sd(0.07, 0.075, 0.075) / √3 / 2.91 = 0.25%
    assert analysis.marginal_text(first) == "IDEA-0001 contributes 2.5% ± 0.2% val loss (removing it raises the loss)"
    assert "no clear contribution" in analysis.marginal_text(second)
    assert analysis.study_verdict("integration", arms) == [
        "integration beats baseline by 3.3% ± 0.0% val loss over 3 seeds"]
