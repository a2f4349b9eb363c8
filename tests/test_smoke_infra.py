from tests.support import World


async def test_world_seeds_and_authenticates(client, world: World) -> None:
    for name in ("superuser", "staff_a", "regular_a", "staff_b", "regular_b", "multi"):
        response = await client.post("/api/v1/auth/logoutall/", headers=world[name].headers)
        assert response.status_code == 204, (name, response.text)
