//! Driving a window like a person would, headlessly: find elements by their
//! accessible labels, type, press, and let the event loop run until what the
//! person waits for is on screen (or fail after a timeout).
//!
//! The testing backend with an event loop can be set up once per process, so
//! every test file holds exactly one `#[test]` (nextest runs each in its own
//! process anyway).
#![allow(dead_code)]

use std::time::{Duration, Instant};

use i_slint_backend_testing::ElementHandle;
use slint::ComponentHandle;

/// How long any one step may take (a real server, scrypt and all).
const STEP: Duration = Duration::from_secs(30);

/// Installs the testing backend with a real event loop (the apps' worker
/// threads post their results into it).
pub fn headless() {
    i_slint_backend_testing::init_integration_test_with_system_time();
}

/// Shows `ui` at a desktop size, so that list views lay out their rows.
pub fn show<C: ComponentHandle>(ui: &C) {
    ui.window().set_size(slint::LogicalSize::new(1000.0, 720.0));
    ui.show().expect("show the window");
}

/// Runs the event loop until `done` holds; panics after a timeout, saying
/// what was awaited and what the window shows.
pub fn wait_until<C, F>(ui: &C, what: &str, done: F)
where
    C: ComponentHandle + i_slint_backend_testing::ElementRoot,
    F: Fn(&C) -> bool,
{
    let deadline = Instant::now() + STEP;
    while !done(ui) {
        if Instant::now() > deadline {
            panic!("timed out waiting for {what}; on screen: {:?}", labels(ui));
        }
        // Let queued results in: run the loop until a timer ends it.
        slint::Timer::single_shot(Duration::from_millis(20), || {
            let _ = slint::quit_event_loop();
        });
        slint::run_event_loop().expect("event loop");
    }
}

/// Every accessible label on screen (for failure messages).
pub fn labels<C: i_slint_backend_testing::ElementRoot>(ui: &C) -> Vec<String> {
    ui.root_element()
        .query_descendants()
        .find_all()
        .iter()
        .filter_map(|e| e.accessible_label())
        .map(|l| l.to_string())
        .filter(|l| !l.is_empty())
        .collect()
}

/// The element labelled exactly `label`, if on screen.
pub fn find<C: i_slint_backend_testing::ElementRoot>(ui: &C, label: &str) -> Option<ElementHandle> {
    ElementHandle::find_by_accessible_label(ui, label).next()
}

/// Whether some element's label contains `text`.
pub fn shows<C: i_slint_backend_testing::ElementRoot>(ui: &C, text: &str) -> bool {
    labels(ui).iter().any(|l| l.contains(text))
}

/// The element labelled `label`; panics when it is not on screen.
pub fn element<C: i_slint_backend_testing::ElementRoot>(ui: &C, label: &str) -> ElementHandle {
    find(ui, label)
        .unwrap_or_else(|| panic!("no element labelled {label:?}; on screen: {:?}", labels(ui)))
}

/// Types `text` into the field labelled `label`.
pub fn type_into<C: i_slint_backend_testing::ElementRoot>(ui: &C, label: &str, text: &str) {
    element(ui, label).set_accessible_value(text);
}

/// Presses the button (or any element's default action) labelled `label`.
pub fn press<C: i_slint_backend_testing::ElementRoot>(ui: &C, label: &str) {
    element(ui, label).invoke_accessible_default_action();
}

/// The value (text) of the element labelled `label`.
pub fn value<C: i_slint_backend_testing::ElementRoot>(ui: &C, label: &str) -> String {
    element(ui, label)
        .accessible_value()
        .map(|v| v.to_string())
        .unwrap_or_default()
}

/// Presses and releases `key` on the focused element.
pub fn press_key<C: ComponentHandle>(ui: &C, key: slint::platform::Key) {
    let text: slint::SharedString = key.into();
    let window = ui.window();
    window.dispatch_event(slint::platform::WindowEvent::KeyPressed { text: text.clone() });
    window.dispatch_event(slint::platform::WindowEvent::KeyReleased { text });
}

/// The admin app, headless and shown, signing itself in to `server` as the test
/// kit's admin (as `VOTING_PASSWORD` makes it do).
pub fn signed_in_admin(server: &voting_testkit::TestServer) -> frontend_slint::AdminWindow {
    use frontend_slint::admin::{self, AdminOptions};
    headless();
    let ui = frontend_slint::AdminWindow::new().expect("window");
    admin::init(
        &ui,
        AdminOptions {
            server: Some(server.addr()),
            ca: Some(server.certs.ca()),
            user: Some(voting_testkit::ADMIN_NAME.into()),
            password: Some(voting_core::Secret::new(voting_testkit::ADMIN_PASSWORD)),
            ..AdminOptions::default()
        },
    )
    .expect("init");
    show(&ui);
    ui
}
