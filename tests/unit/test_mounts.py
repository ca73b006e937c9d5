from pathlib import Path

from unstuck.watching.mounts import decide, parse_mountinfo

# Real /proc/self/mountinfo lines, as seen in containers on each kind of host.
OVERLAY_ROOT = "611 532 0:52 / / rw,relatime master:305 - overlay overlay rw,lowerdir=/var/lib/docker/overlay2/l/X"
LINUX_BIND = "628 611 254:0 /home/dev/proj/app /workspace/app rw,relatime - ext4 /dev/vda rw"
DESKTOP_MAC_GRPCFUSE = "1234 611 0:138 /proj/app /workspace/app rw,nosuid,nodev,relatime - fuse.grpcfuse grpcfuse rw,user_id=0,group_id=0,allow_other,max_read=1048576"
DESKTOP_MAC_VIRTIOFS = "1310 611 0:183 /Users/dev/proj/app /workspace/app rw,relatime - fakeowner /run/host_mark/Users rw,fakeowner"
ORBSTACK_VIRTIOFS = "1402 611 0:60 /Users/dev/proj /workspace rw,relatime - virtiofs mac rw"
BINDFS = "59 27 0:52 / /workspace rw,nosuid,nodev,relatime - fuse.grpcfuse /src rw,user_id=0,group_id=0,allow_other"
WSL_DRVFS = r"97 66 0:50 / /mnt/c rw,noatime - 9p C:\134 rw,dirsync,aname=drvfs;path=C:\;uid=1000;gid=1000"
NFS = "150 611 0:61 / /workspace/app rw,relatime - nfs4 fileserver:/export/app rw,vers=4.2"
VBOX = "80 611 0:45 / /workspace rw,nodev,relatime - vboxsf workspace rw"
ROOT = [Path("/workspace")]


def test_linux_bind_mount_uses_inotify():
    d = decide(ROOT, "\n".join([OVERLAY_ROOT, LINUX_BIND]), None)
    assert not d.poll and "ext4" in d.reason and "overlay" in d.reason


def test_docker_desktop_orbstack_colima_and_other_fuse_shares_use_inotify_with_a_safety_poll():
    for line in (DESKTOP_MAC_GRPCFUSE, DESKTOP_MAC_VIRTIOFS, ORBSTACK_VIRTIOFS, BINDFS):
        d = decide(ROOT, "\n".join([OVERLAY_ROOT, line]), None)
        assert not d.poll and d.safety, line
        assert d.reason.startswith("/workspace") and "may not all raise inotify events" in d.reason


def test_a_mount_without_events_anywhere_under_the_root_wins_over_one_with_some():
    d = decide(ROOT, "\n".join([OVERLAY_ROOT, DESKTOP_MAC_VIRTIOFS, NFS.replace("/workspace/app", "/workspace/data")]),
               None)
    assert d.poll and not d.safety and "nfs4" in d.reason


def test_local_filesystems_and_forced_settings_have_no_safety_poll():
    assert not decide(ROOT, "\n".join([OVERLAY_ROOT, LINUX_BIND]), None).safety
    assert decide(ROOT, "\n".join([OVERLAY_ROOT, DESKTOP_MAC_VIRTIOFS]), True) == decide(ROOT, OVERLAY_ROOT, True)
    forced_off = decide(ROOT, "\n".join([OVERLAY_ROOT, DESKTOP_MAC_VIRTIOFS]), False)
    assert not forced_off.poll and not forced_off.safety


def test_nfs_under_the_root_and_vboxsf_holding_it_poll():
    assert decide(ROOT, "\n".join([OVERLAY_ROOT, NFS]), None).poll
    assert decide(ROOT, "\n".join([OVERLAY_ROOT, VBOX]), None).reason.startswith("/workspace is a vboxsf mount")


def test_wsl_drive_is_found_by_its_mount_point():
    assert decide([Path("/mnt/c/Users/dev/proj")], "\n".join([OVERLAY_ROOT, WSL_DRVFS]), None).poll
    assert not decide(ROOT, "\n".join([OVERLAY_ROOT, WSL_DRVFS]), None).poll  # a 9p mount elsewhere


def test_forced_either_way():
    assert decide(ROOT, OVERLAY_ROOT, True).poll
    assert not decide(ROOT, "\n".join([OVERLAY_ROOT, NFS]), False).poll


def test_escaped_mount_points_are_read():
    mounts = parse_mountinfo(r"628 611 254:0 /a /work\040space/app rw - ext4 /dev/vda rw")
    assert mounts[0].point == "/work space/app"


def test_fuse_shares_known_to_carry_no_events_still_poll():
    sshfs = "70 611 0:48 / /workspace rw,nosuid,nodev,relatime - fuse.sshfs dev@host:/proj rw,user_id=0,group_id=0"
    d = decide(ROOT, "\n".join([OVERLAY_ROOT, sshfs]), None)
    assert d.poll and not d.safety and "fuse.sshfs" in d.reason
