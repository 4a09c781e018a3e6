import json

import paddle

paddle.seed(0)
net = paddle.nn.Sequential(paddle.nn.Linear(8, 16), paddle.nn.BatchNorm1D(16), paddle.nn.Linear(16, 4))
sd = net.state_dict()
paddle.save(sd, "out/model.pdparams", protocol=4)
paddle.save(sd, "out/model_p2.pdparams", protocol=2)
net.eval()
paddle.jit.save(net, "out/infer/model", input_spec=[paddle.static.InputSpec([None, 8], "float32")])
print(
    json.dumps(
        {
            "state_dict": {k: [list(v.shape), str(v.dtype)] for k, v in sd.items()},
            "total": sum(int(v.numel()) for v in sd.values()),
            "params": {p.name: list(p.shape) for p in net.parameters()},
        }
    )
)
