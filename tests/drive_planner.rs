//! Golden tests of the planner: one scenario per row of the decision table (see
//! `passerelle::drive::plan`), asserting the plan itself.
use std::collections::BTreeMap;

use passerelle::drive::{
    journal::Record,
    local::LocalEntry,
    plan::{plan, Action, Options, Plan, SafetyStop, Side},
    remote::{Precondition, RemoteEntry},
    Kind,
};

#[derive(Default)]
struct Scene {
    j: BTreeMap<String, Record>,
    l: BTreeMap<String, LocalEntry>,
    r: BTreeMap<String, RemoteEntry>,
}

const F: Kind = Kind::File;
const D: Kind = Kind::Dir;

impl Scene {
    /// A path synced before and unchanged on both sides. `n` seeds size, mtime, inode, etag.
    fn synced(mut self, path: &str, kind: Kind, n: u64) -> Scene {
        self = self.journal(path, kind, n);
        self = self.local(path, kind, n);
        self.remote(path, kind, n)
    }
    fn journal(mut self, path: &str, kind: Kind, n: u64) -> Scene {
        let file = kind == F;
        self.j.insert(
            path.into(),
            Record {
                kind,
                size: if file { n } else { 0 },
                mtime: n as i64,
                inode: n,
                etag: file.then(|| format!("\"e{n}\"")),
                file_id: Some(format!("id{n}")),
                checksum: None,
            },
        );
        self
    }
    fn local(mut self, path: &str, kind: Kind, n: u64) -> Scene {
        let size = if kind == F { n } else { 0 };
        self.l.insert(path.into(), LocalEntry { kind, size, mtime: n as i64, inode: n, disk_path: path.into() });
        self
    }
    fn remote(mut self, path: &str, kind: Kind, n: u64) -> Scene {
        let file = kind == F;
        self.r.insert(
            path.into(),
            RemoteEntry {
                kind,
                size: if file { n } else { 0 },
                mtime: Some(n as i64),
                etag: file.then(|| format!("\"e{n}\"")),
                file_id: Some(format!("id{n}")),
                server_path: path.into(),
            },
        );
        self
    }
    fn no_local(mut self, path: &str) -> Scene {
        self.l.remove(path);
        self
    }
    fn no_remote(mut self, path: &str) -> Scene {
        self.r.remove(path);
        self
    }
    fn plan(&self) -> Plan {
        plan(&self.j, &self.l, &self.r, &options())
    }
    fn lines(&self) -> Vec<String> {
        self.plan().actions.iter().map(Action::summary).collect()
    }
}

fn options() -> Options {
    Options::new(time::macros::datetime!(2026-03-04 05:06:07))
}

fn s() -> Scene {
    Scene::default()
}

#[track_caller]
fn expect(scene: Scene, lines: &[&str]) {
    assert_eq!(scene.lines(), lines);
}

#[test]
fn unchanged_on_both_sides_is_a_no_op() {
    expect(s().synced("a", F, 1).synced("d", D, 2).synced("d/b", F, 3), &[]);
}

#[test]
fn new_local_items_are_uploaded_parents_first() {
    expect(s().local("a", F, 1).local("d", D, 2).local("d/b", F, 3), &["mkdir remote d", "upload new a", "upload new d/b"]);
    let plan = s().local("a", F, 1).plan();
    assert!(matches!(&plan.actions[0], Action::Upload { pre: Precondition::Create, .. }));
}

/// Issue 12, item 15: a local symbolic link (left out of the sync) was replaced by a remote
/// file of the same name. A link is listed as `Kind::Link`: nothing takes its name, nothing
/// goes below it, the remote item is reported, and a synced item turned into a link is not
/// deleted on the server.
#[test]
fn a_local_link_keeps_its_name() {
    const L: Kind = Kind::Link;
    let scene = s()
        .local("notes", L, 1)
        .remote("notes", F, 2)
        .local("docs", L, 3)
        .remote("docs", D, 4)
        .remote("docs/a.txt", F, 5)
        .synced("was-a-file", F, 6)
        .local("was-a-file", L, 7)
        .local("alone", L, 8);
    let plan = scene.plan();
    assert_eq!(plan.actions.iter().map(Action::summary).collect::<Vec<_>>(), Vec::<String>::new());
    let kept: Vec<&str> = plan.kept_by_links.iter().map(|r| r.path.as_str()).collect();
    assert_eq!(kept, ["docs", "notes", "was-a-file"]);
    assert!(plan.safety_stops(&options()).is_empty());
    // Beside it, the rest syncs as usual.
    expect(s().local("notes", L, 1).remote("notes", F, 2).remote("b", F, 3), &["download b"]);
}

#[test]
fn new_remote_items_are_downloaded() {
    expect(s().remote("a", F, 1).remote("d", D, 2).remote("d/b", F, 3), &["mkdir local d", "download a", "download d/b"]);
}

#[test]
fn local_edit_is_uploaded_with_if_match() {
    let scene = s().synced("a", F, 1).local("a", F, 5);
    expect(scene, &["upload a"]);
    let plan = s().synced("a", F, 1).local("a", F, 5).plan();
    assert!(matches!(&plan.actions[0], Action::Upload { pre: Precondition::Replace(e), .. } if e == "\"e1\""));
}

#[test]
fn remote_edit_is_downloaded() {
    expect(s().synced("a", F, 1).remote("a", F, 5), &["download a"]);
}

#[test]
fn both_edited_is_a_conflict_keeping_both() {
    expect(s().synced("a.txt", F, 1).local("a.txt", F, 5).remote("a.txt", F, 6), &["conflict a.txt (local copy -> a (conflit 2026-03-04 050607).txt)"]);
    let plan = s().synced("a.txt", F, 1).local("a.txt", F, 5).remote("a.txt", F, 6).plan();
    assert!(plan.another_pass, "the conflict copy is uploaded by the next pass");
}

#[test]
fn both_new_files_are_a_conflict_resolved_by_content() {
    expect(s().local("a", F, 1).remote("a", F, 1), &["conflict a (local copy -> a (conflit 2026-03-04 050607))"]);
}

#[test]
fn both_new_folders_are_recorded() {
    expect(s().local("d", D, 1).remote("d", D, 2), &["record d"]);
}

#[test]
fn local_delete_deletes_remote_with_if_match() {
    expect(s().synced("a", F, 1).synced("b", F, 2).synced("c", F, 3).no_local("a"), &["delete remote a"]);
    let plan = s().synced("a", F, 1).no_local("a").plan();
    assert!(matches!(&plan.actions[0], Action::DeleteRemote { if_match: Some(e), .. } if e == "\"e1\""));
}

#[test]
fn remote_delete_deletes_local() {
    expect(s().synced("a", F, 1).synced("b", F, 2).synced("c", F, 3).no_remote("a"), &["delete local a"]);
}

#[test]
fn deleted_on_both_sides_is_forgotten() {
    expect(s().synced("a", F, 1).no_local("a").no_remote("a"), &["forget a"]);
}

#[test]
fn delete_against_edit_the_edit_wins() {
    expect(s().synced("a", F, 1).no_local("a").remote("a", F, 5), &["download a"]);
    expect(s().synced("a", F, 1).local("a", F, 5).no_remote("a"), &["upload new a"]);
}

#[test]
fn a_folder_deleted_with_everything_below_is_one_remote_delete() {
    let scene = s().synced("keep", F, 9).synced("d", D, 1).synced("d/a", F, 2).synced("d/e", D, 3).synced("d/e/b", F, 4);
    let scene = scene.no_local("d").no_local("d/a").no_local("d/e").no_local("d/e/b");
    expect(scene, &["delete remote d/"]);
}

#[test]
fn a_folder_deleted_locally_is_kept_when_the_server_added_to_it() {
    let scene = s().synced("d", D, 1).synced("d/old", F, 2).remote("d/new", F, 3).no_local("d").no_local("d/old");
    expect(scene, &["mkdir local d", "download d/new", "delete remote d/old"]);
}

#[test]
fn a_folder_deleted_remotely_is_kept_when_edited_locally() {
    let scene = s().synced("d", D, 1).synced("d/f", F, 2).local("d/f", F, 7).no_remote("d").no_remote("d/f");
    expect(scene, &["mkdir remote d", "upload new d/f"]);
}

#[test]
fn a_folder_deleted_remotely_goes_children_first() {
    let scene = s().synced("x", F, 9).synced("d", D, 1).synced("d/f", F, 2).no_remote("d").no_remote("d/f");
    expect(scene, &["delete local d/f", "delete local d/"]);
}

#[test]
fn local_rename_is_a_move() {
    // Same inode under a new name.
    let scene = s().synced("a", F, 1).no_local("a").local("b", F, 1);
    expect(scene, &["move remote a -> b"]);
}

#[test]
fn local_folder_rename_moves_the_whole_tree_once() {
    let scene = s().synced("d", D, 1).synced("d/f", F, 2).synced("d/g", F, 3);
    let scene = scene.no_local("d").no_local("d/f").no_local("d/g").local("e", D, 1).local("e/f", F, 2).local("e/g", F, 3);
    expect(scene, &["move remote d -> e"]);
}

#[test]
fn renamed_and_edited_is_a_move_then_an_upload() {
    let mut scene = s().synced("a", F, 1).no_local("a");
    scene.l.insert("b".into(), LocalEntry { kind: F, size: 40, mtime: 40, inode: 1, disk_path: "b".into() });
    expect(scene, &["move remote a -> b", "upload b"]);
}

#[test]
fn remote_rename_by_file_id_is_a_local_move() {
    let mut scene = s().synced("a", F, 1).no_remote("a");
    let mut moved = scene.r.get("a").cloned().unwrap_or_else(|| RemoteEntry {
        kind: F,
        size: 1,
        mtime: Some(1),
        etag: Some("\"e1\"".into()),
        file_id: Some("id1".into()),
        server_path: "b".into(),
    });
    moved.server_path = "b".into();
    scene.r.insert("b".into(), moved);
    expect(scene, &["move local a -> b"]);
}

#[test]
fn type_change_deletes_the_old_item_first() {
    // A file became a folder locally: this pass removes the remote file, the next uploads.
    let scene = s().synced("x", F, 9).synced("a", F, 1).local("a", D, 5).local("a/f", F, 6);
    let plan = scene.plan();
    assert_eq!(plan.actions.iter().map(Action::summary).collect::<Vec<_>>(), ["delete remote a"]);
    assert!(plan.another_pass);
    // A folder became a file on the server.
    let scene = s().synced("x", F, 9).synced("d", D, 1).remote("d", F, 5);
    let plan = scene.plan();
    assert_eq!(plan.actions.iter().map(Action::summary).collect::<Vec<_>>(), ["delete local d/"]);
}

#[test]
fn type_change_on_both_sides_is_a_conflict() {
    let scene = s().synced("a", F, 1).local("a", D, 5).remote("a", D, 6);
    expect(scene, &["record a"]);
    let scene = s().local("a", D, 5).local("a/x", F, 3).remote("a", F, 6);
    expect(scene, &["conflict a (local copy -> a (conflit 2026-03-04 050607))"]);
}

#[test]
fn type_change_against_an_edit_inside_is_a_conflict() {
    // A folder became a file on the server while a file inside it was edited here: deleting
    // the folder here would fail on the edit, re-creating it there fails on the file.
    let scene = s().synced("d", D, 1).synced("d/b", F, 2).remote("d", F, 5).no_remote("d/b").local("d/b", F, 6);
    let plan = scene.plan();
    assert_eq!(plan.actions.iter().map(Action::summary).collect::<Vec<_>>(), ["conflict d (local copy -> d (conflit 2026-03-04 050607))"]);
    assert!(plan.another_pass);
    // A folder became a file here while the server added a file inside it.
    let scene = s().synced("d", D, 1).synced("d/b", F, 2).local("d", F, 5).no_local("d/b").remote("d/n", F, 7);
    expect(scene, &["conflict d (local copy -> d (conflit 2026-03-04 050607))"]);
    // Only deletions inside: no conflict, the type change goes through.
    let scene = s().synced("x", F, 9).synced("d", D, 1).synced("d/b", F, 2).remote("d", F, 5).no_remote("d/b").no_local("d/b");
    expect(scene, &["delete local d/", "forget d/b"]);
}

#[test]
fn items_waiting_for_a_retry_are_left_alone() {
    let scene = s().local("a", F, 1).local("b", F, 2);
    let mut options = options();
    options.skip.insert("a".into());
    let plan = plan(&scene.j, &scene.l, &scene.r, &options);
    assert_eq!(plan.actions.iter().map(Action::summary).collect::<Vec<_>>(), ["upload new b"]);
}

#[test]
fn nfd_spellings_are_kept_for_the_server() {
    // The key is NFC; the server spells it NFD: the download goes to the NFC key's disk path,
    // from the server's spelling.
    let mut scene = s();
    scene.r.insert(
        "é.txt".into(),
        RemoteEntry { kind: F, size: 1, mtime: None, etag: None, file_id: None, server_path: "e\u{301}.txt".into() },
    );
    let plan = scene.plan();
    assert!(matches!(&plan.actions[0], Action::Download { disk, fetch, .. } if disk == "é.txt" && fetch.server == "e\u{301}.txt"));
}

#[test]
fn safety_stops_are_predicates_over_the_plan() {
    let mut scene = s();
    for i in 1..=10 {
        scene = scene.synced(&format!("f{i}"), F, i);
    }
    let plan = scene.plan();
    assert!(plan.safety_stops(&options()).is_empty());
    // 6 of 10 deleted locally: the plan deletes them on the server.
    let mut deleting = s();
    for i in 1..=10 {
        deleting = deleting.synced(&format!("f{i}"), F, i);
    }
    for i in 1..=6 {
        deleting = deleting.no_local(&format!("f{i}"));
    }
    let stops = deleting.plan().safety_stops(&options());
    assert_eq!(stops, [SafetyStop::MassDelete { side: Side::Remote, deletes: 6, files: 10 }]);
    // 5 of 10 is not more than half.
    let mut half = s();
    for i in 1..=10 {
        half = half.synced(&format!("f{i}"), F, i);
    }
    for i in 1..=5 {
        half = half.no_local(&format!("f{i}"));
    }
    assert!(half.plan().safety_stops(&options()).is_empty());
    // The server lists nothing.
    let mut wiped = s();
    for i in 1..=2 {
        wiped = wiped.synced(&format!("f{i}"), F, i).no_remote(&format!("f{i}"));
    }
    assert!(wiped.plan().safety_stops(&options()).contains(&SafetyStop::RemoteEmpty { known: 2 }));
}

#[test]
fn the_plan_prints() {
    let plan = s().local("a", F, 1).remote("b", F, 2).plan();
    assert_eq!(plan.to_string(), "upload new a\ndownload b\n");
}
