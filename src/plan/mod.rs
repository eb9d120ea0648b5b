//! The plan stage: a `Job` and a run's identity become the task list. The plan is computed, not
//! stored: `Plan::task(id)` renders any task on demand and `Plan::tasks` is a lazy iterator, so a
//! plan of 10^9 tasks costs no more memory than one of ten.

mod run_info;
mod task;

pub use run_info::RunInfo;
pub use task::{NumericPlan, Plan, Task, TaskId, TaskItems, range_content_key};
