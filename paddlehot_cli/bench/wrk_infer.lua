-- wrk script: POST a JSON OIP v2 infer request for the demo MLP (x: FP32 [1,16]).
-- wrk -t2 -c8 -d15s --latency -s paddlehot_cli/bench/wrk_infer.lua http://127.0.0.1:8000/v2/models/mlp/infer
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"inputs":[{"name":"x","datatype":"FP32","shape":[1,16],"data":[0.1,0.2,0.3,0.4,0.5,0.6,0.7,0.8,0.9,1.0,1.1,1.2,1.3,1.4,1.5,1.6]}]}'
