from pathlib import Path

from unstuck.mounts import decide, parse_mountinfo

# Real /proc/self/mountinfo lines, as seen in containers on each kind of host.
OVERLAY_ROOT = "611 532 0:52 / / rw,relatime master:305 - overlay overlay rw,lowerdir=/var/lib/docker/overlay2/l/X"
LINUX_BIND = "628 611 254:0 /home/dev/proj/app /workspace/app rw,relatime - ext4 /dev/vda rw"
DESKTOP_MAC_GRPCFUSE = "1234 611 0:138 /proj/app /workspace/app rw,nosuid,nodev,relatime - fuse.grpcfuse grpcfuse rw,user_id=0,group_id=0,allow_other,max_read=1048576"
DESKTOP_MAC_VIRTIOFS = "1310 611 0:183 /Users/dev/proj/app /workspace/app rw,relatime - fakeowner /run/host_mark/Users rw,fakeowner"
WSL_DRVFS = r"97 66 0:50 / /mnt/c rw,noatime - 9p C:\134 rw,dirsync,aname=drvfs;path=C:\;uid=1000;gid=1000"
NFS = "150 611 0:61 / /workspace/app rw,relatime - nfs4 fileserver:/export/app rw,vers=4.2"
VBOX = "80 611 0:45 / /workspace rw,nodev,relatime - vboxsf workspace rw"
ROOT = [Path("/workspace")]


def test_linux_bind_mount_uses_inotify():
    d = decide(ROOT, "\n".join([OVERLAY_ROOT, LINUX_BIND]), None)
    assert not d.poll and "ext4" in d.reason and "overlay" in d.reason


def test_docker_desktop_shares_poll():
    for line in (DESKTOP_MAC_GRPCFUSE, DESKTOP_MAC_VIRTIOFS):
        d = decide(ROOT, "\n".join([OVERLAY_ROOT, line]), None)
        assert d.poll and d.reason.startswith("/workspace/app is a ")


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
