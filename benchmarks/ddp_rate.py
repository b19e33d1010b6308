"""One rank of ``vit_rates.ddp_trainer_rate`` (started by torchrun): the trainer's rate under DDP.

    torchrun --standalone --nproc-per-node=2 benchmarks/ddp_rate.py PRESET N GLOBAL_BATCH OUT.json
"""
import json
import os
import sys
from pathlib import Path

import torch
import torch.distributed as dist

sys.path.insert(0, str(Path(__file__).parent))
from vit_rates import trainer_rate  # noqa: E402

if __name__ == "__main__":
    preset, n, batch, out = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), Path(sys.argv[4])
    torch.cuda.set_device(int(os.environ["LOCAL_RANK"]))
    dist.init_process_group("nccl")
    rate = trainer_rate(preset, n, batch, torch.device("cuda"))  # every rank trains on its shard of each batch
    if dist.get_rank() == 0:
        out.write_text(json.dumps({"samples_per_s": rate, "gpus": dist.get_world_size()}))
    dist.destroy_process_group()
