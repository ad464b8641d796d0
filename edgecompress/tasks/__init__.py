"""Tasks: what a model is judged on, declared once (registry) and looked up everywhere else.

    from edgecompress.tasks import task_named, decide_task, ModelFacts
    task = task_named("regression")          # labels, metric, paired test, loss, report columns
    scored = task.score(outputs, truth, facts)

Modules: outputs (model facts and the raw-outputs convention), registry (the tasks),
infer (which task a run is), metrics (figures from raw outputs: each task's, and fidelity),
paired (paired statistics against the baseline), objectives (what fine-tuning learns from).
No TensorFlow here except in `objectives`, which imports it when a loss is built.
"""

from edgecompress.tasks.infer import LabelFacts, TaskDecision, decide_task
from edgecompress.tasks.outputs import ModelFacts, OutputSpec
from edgecompress.tasks.registry import TASK_NAMES, TASKS, Metric, Task, Truth, task_named

__all__ = [
    "TASKS",
    "TASK_NAMES",
    "LabelFacts",
    "Metric",
    "ModelFacts",
    "OutputSpec",
    "Task",
    "TaskDecision",
    "Truth",
    "decide_task",
    "task_named",
]
