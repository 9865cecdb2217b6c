from hotfolder.transfer import faspmgr


def test_frames_split_on_the_first_colon_space_and_end_on_a_blank_line() -> None:
    p = faspmgr.FrameParser()
    data = (
        b"FASPMGR 2\nType: ERROR\nCode: 5\n"
        b"Description: Server aborted session: Read access denied for user\n\n"
    )
    (frame,) = p.feed(data)
    assert frame.type == "ERROR"
    assert frame.int("Code") == 5
    assert frame.get("Description") == "Server aborted session: Read access denied for user"


def test_frames_arrive_in_pieces() -> None:
    p = faspmgr.FrameParser()
    data = faspmgr.encode({"Type": "STATS", "TransferBytes": 100, "StartByte": 5}) * 2
    frames = [f for i in range(len(data)) for f in p.feed(data[i : i + 1])]
    assert [f.int("TransferBytes") + f.int("StartByte") for f in frames] == [105, 105]


def test_a_new_header_discards_an_unfinished_frame_and_noise_is_ignored() -> None:
    p = faspmgr.FrameParser()
    frames = p.feed(b"garbage\nType: DONE\n\nFASPMGR 2\nType: STATS\nFASPMGR 2\nType: DONE\n\n")
    assert [f.type for f in frames] == ["DONE"]


def test_escaped_paths_round_trip_and_crlf_is_tolerated() -> None:
    name = "odd\nname\r\x1bx.mov"
    data = faspmgr.encode({"Type": "STOP", "File": name}).replace(b"\n", b"\r\n")
    (frame,) = faspmgr.FrameParser().feed(data)
    assert frame.get("File") == name


def test_utf8_split_across_reads() -> None:
    data = faspmgr.encode({"Type": "STOP", "File": "caf\u00e9.mov"})
    cut = data.index(b"\xc3") + 1
    p = faspmgr.FrameParser()
    assert p.feed(data[:cut]) == []
    (frame,) = p.feed(data[cut:])
    assert frame.get("File") == "caf\u00e9.mov"


def test_retryable_codes() -> None:
    assert faspmgr.is_retryable(16)
    assert faspmgr.is_retryable(44)
    assert faspmgr.is_retryable(14)
    assert not faspmgr.is_retryable(14, "Target address not available")
    for code in (19, 41, 8, 29, 30, 5, 4):
        assert not faspmgr.is_retryable(code)
