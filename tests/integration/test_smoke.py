from conftest import make_trial, submission


def test_a_hads_submission_is_accepted_scored_and_summarised(client, container, pump):
    keys = make_trial(client, container)
    r = client.post("/v1/trials/cmt-pilot/submissions", headers=keys.submitter, json=submission())
    assert r.status_code == 201, r.text
    pump.drain()
    scores = client.get("/v1/trials/cmt-pilot/participants/P01/scores", headers=keys.coordinator)
    assert scores.status_code == 200, scores.text
    sub = scores.json()["timepoints"][0]["submissions"][0]
    # anxiety items 1,3,5,7,9,11,13 = 2+3+2+0+1+2+2 = 12; depression 0+1+1+2+3+1+0 = 8
    assert sub["scores"]["anxiety"]["score"] == 12
    assert sub["scores"]["depression"]["score"] == 8
    summary = client.get("/v1/trials/cmt-pilot/summary", headers=keys.coordinator).json()
    row = next(a for a in summary["aggregates"] if a["subscale"] == "anxiety")
    assert (row["n"], row["mean"], row["sd"]) == (1, 12, None)
