"""The course's claims about what a ConvNet learns, as experiments that could come out either way.

Each experiment trains networks on real data across seeds and returns plain numbers; each ``check_*`` rule
(:mod:`.rules`) turns them into a verdict that is false on a control (an untrained network, a sweep whose
rates are all small, the single-stream network). One module a lesson: :mod:`.dynamics` (lesson 03),
:mod:`.alexnet` (05), :mod:`.decisions` (06), :mod:`.units` (08), and "what thirty years bought" (02),
:mod:`.thirty_years`. The lessons and ``benchmarks/seed_claims.py`` call the same
code, so they cannot drift apart; everything is reachable as ``claims.NAME``. Lesson 09's experiments,
:mod:`.next_decade`, are imported by that lesson alone (``from course_lib.claims import next_decade``), so
that work on them leaves the other lessons' published runs current (``instructor.solutions.fingerprint``).
"""

from .rules import (check_conv1_conv5, check_dead_trend, check_rise, check_shift, check_stream_split,
                    check_weight_blind, claim_row, decay_per_run, paired_table, stream_gap, weight_decay_for)
from .dynamics import (OVERFIT_DECAY_FADE, RELU_LAYERS, digit_claims, dynamics_run, layer_stats, layer_values,
                       overfit_run, relu_lenet5, saturation, saturation_run, sweep_run,
                       untrained_live_sparsity, untrained_saturation)
from .alexnet import (ALEXNET_ASSERTED, alexnet_claims, alexnet_measures, alexnet_rows, cat_layers, cat_picture,
                      chance_purity, content_claim, decay_over_run, paper_decay, reference_claims, same_class_share,
                      stream_measures, top_image_purity)
from .decisions import (ERASED, LENET1_LAYERS_TOP_DOWN, RELU_LENET1_LAYERS_TOP_DOWN, SHIFT_DIRECTIONS, SHIFT_MODELS,
                        decision_claims, erase_pushed_out, gradient_attributions, guided_run, ink_leaving_box,
                        lenet1_attributions, relu_lenet1, sanity_run, shift_accuracy, shift_run, small_mlp,
                        unrelated_run)
from .thirty_years import THIRTY_YEARS_CHANGES, lenet1_with_change, thirty_years
from .units import (EPSILONS, conv1_resemblance, filter_match, fooling_run, frequency_with_and_without,
                    lenet_conv1_patch, made_against_real, unit_claims)

__all__ = ["check_conv1_conv5", "check_dead_trend", "check_rise", "check_shift", "check_stream_split",
           "check_weight_blind", "claim_row", "decay_per_run", "stream_gap", "weight_decay_for", "OVERFIT_DECAY_FADE",
           "RELU_LAYERS", "digit_claims", "dynamics_run", "layer_stats", "layer_values", "overfit_run", "relu_lenet5",
           "saturation", "saturation_run", "sweep_run", "untrained_live_sparsity", "untrained_saturation",
           "ALEXNET_ASSERTED", "alexnet_claims", "alexnet_rows", "reference_claims", "alexnet_measures", "cat_layers",
           "cat_picture", "chance_purity", "content_claim",
           "decay_over_run", "paper_decay", "same_class_share", "stream_measures", "top_image_purity",
           "LENET1_LAYERS_TOP_DOWN", "SHIFT_DIRECTIONS", "SHIFT_MODELS", "decision_claims", "lenet1_attributions",
           "RELU_LENET1_LAYERS_TOP_DOWN", "gradient_attributions", "guided_run", "relu_lenet1", "sanity_run",
           "shift_accuracy", "shift_run", "small_mlp", "unrelated_run", "ERASED", "erase_pushed_out", "ink_leaving_box",
           "THIRTY_YEARS_CHANGES", "lenet1_with_change",
           "thirty_years", "paired_table", "EPSILONS", "filter_match", "fooling_run", "frequency_with_and_without",
           "made_against_real", "unit_claims",
           "conv1_resemblance", "lenet_conv1_patch"]
