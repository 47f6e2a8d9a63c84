# Settings and shell steps shared by train.sh and verifier.sh (sourced from the repository root).

# ultralytics offline: no downloads, no pip installs at run time
export YOLO_CONFIG_DIR="$PWD/.ultralytics" YOLO_OFFLINE=1 YOLO_AUTOINSTALL=False
BIN=.venv/bin
G=datasets/generated

# synth OUT COUNT SEED RECIPE: a synthetic split, two worker processes (the files do not depend on the worker
# count). A split whose data.yaml exists with COUNT images is kept (same seed, same files), so a rerun skips it.
synth() {
  [ -f "$G/$1/data.yaml" ] && [ "$(ls "$G/$1/images" | wc -l)" -eq "$2" ] && return 0
  $BIN/smartscreen synth --out "$G/$1" --count "$2" --seed "$3" --recipe "datasets/$4.yaml" --workers 2 --no-progress
}

# install_report EVAL_DIR: the evaluation of a promoted candidate becomes the shipped package's report (PR curves,
# promotion check, eval-test.json naming the shipped package instead of the staging copy it ran on)
install_report() {
  cp "$1/pr_curve.png" models/smartscreen-yolo11n/pr_curve_test.png
  cp "$1/promotion.json" models/smartscreen-yolo11n/promotion-test.json
  $BIN/python - "$1/eval.json" <<'PY'
import json, pathlib, sys
doc = json.loads(pathlib.Path(sys.argv[1]).read_text())
doc["package"] = "models/smartscreen-yolo11n"
pathlib.Path("models/smartscreen-yolo11n/eval-test.json").write_text(json.dumps(doc, indent=2))
PY
}
