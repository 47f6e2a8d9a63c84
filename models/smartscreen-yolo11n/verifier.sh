#!/usr/bin/env bash
# Adds the second-look verifier to models/smartscreen-yolo11n (2.11.0 = 2.9.0's detector + this step; see
# MODEL_CARD.md, "Second look"). Run it after train.sh has promoted a detector: a verifier is trained on the
# candidate boxes of the detector it sits behind, so train.sh drops the old one when it replaces the detector.
#   models/smartscreen-yolo11n/verifier.sh         # from the repository root, with .venv set up (make venv-dev)
# About 25 min of synthesis, 15 min of mining (the detector over 6,000 parcels) and 10 min of training on 2 cores.
# 2.11.0's crops were mined in two passes (seeds 15 + 16, then 17 + 18) and joined; one pass draws other
# ground-truth jitter, so a rerun gives an equivalent, not a bit-identical, verifier.
set -euo pipefail
cd "$(dirname "$0")/../.."
source models/smartscreen-yolo11n/steps.sh  # offline ultralytics, BIN, G; synth, install_report
VERSION=${VERSION:-2.11.0}
EPOCHS=${EPOCHS:-10}

# 1. parcels the detector has not been trained on: the third-round weak-class recipe and the hard-negative one
synth vtrain15 1500 15 synth-train-weak3
synth vtrain16hn 1500 16 synth-train-hardneg
synth vtrain17 1500 17 synth-train-weak3
synth vtrain18hn 1500 18 synth-train-hardneg
synth val 160 1 synth-val
synth test1 250 1 synth-test
synth test2 250 2 synth-test
cat > $G/verifier.yaml <<YAML
path: $PWD/$G
train: [vtrain15/images, vtrain16hn/images, vtrain17/images, vtrain18hn/images]
val: [val/images]
test: [test1/images, test2/images]
names: [baton, pliers, hammer, powerbank, scissors, wrench, gun, bullet, sprayer, handcuffs, knife, lighter, lithium_battery, flammable_liquid, firecracker]
YAML

# 2. mine the shipped detector's candidates (4 views, as on the line) and train the crop classifier from its own
#    backbone: 64 px crops, 1.5x context, evidence "object" (one minus background), weight 0.5
rm -rf runs/candidate-verified runs/verifier/shipped
$BIN/smartscreen verifier --model models/smartscreen-yolo11n --data $G/verifier.yaml \
  --out runs/candidate-verified/smartscreen-yolo11n --run runs/verifier/shipped --version "$VERSION" \
  --epochs "$EPOCHS" --crop-px 64 --batch 64 --lr 0.002 --evidence object --weight 0.5

# 3. evaluate on the held-out test recipe with the promotion check against the shipped package; replace only on a pass
if ! $BIN/smartscreen eval --model runs/candidate-verified/smartscreen-yolo11n --data $G/verifier.yaml --split test \
  --target-far 0.03 --record --baseline models/smartscreen-yolo11n --out runs/eval/verified-test; then
  echo "evaluation or promotion check failed (see above): candidate left in runs/candidate-verified, shipped package unchanged" >&2
  exit 1
fi
cp runs/candidate-verified/smartscreen-yolo11n/{verifier.onnx,model.yaml} models/smartscreen-yolo11n/
install_report runs/eval/verified-test
echo "promoted: models/smartscreen-yolo11n is now $VERSION with its verifier"
